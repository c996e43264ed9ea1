"""Domain errors. Each carries a stable machine-readable `code`.

The mapping to HTTP statuses lives in one place, `chalicelib.api.errors`; nothing in
the domain knows about HTTP.
"""

from __future__ import annotations


class LifeboatError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(LifeboatError):
    code = "bad_request"


class Unauthorized(LifeboatError):
    code = "unauthorized"


class Forbidden(LifeboatError):
    code = "forbidden"


class NotFound(LifeboatError):
    code = "not_found"


class Conflict(LifeboatError):
    code = "conflict"


class PayloadTooLarge(LifeboatError):
    code = "payload_too_large"


class UnsupportedMediaType(LifeboatError):
    code = "unsupported_media_type"


class ValidationFailed(LifeboatError):
    code = "validation_failed"


class FollowLimitReached(ValidationFailed):
    """Following more accounts would pass MAX_FOLLOWING (Mastodon's words)."""

    code = "follow_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Validation failed: You cannot follow more than {limit} people")
        self.limit = limit


class OAuthRefused(BadRequest):
    """An OAuth request refused with one of RFC 6749's error codes
    (invalid_request, invalid_grant, unsupported_grant_type, invalid_scope)."""


class OAuthClientRefused(Unauthorized):
    """The client did not authenticate (RFC 6749's invalid_client)."""

    code = "invalid_client"


class RetryLater(LifeboatError):
    """Refused for now; the client may try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(RetryLater):
    code = "rate_limited"


class Unavailable(RetryLater):
    """Neither store took the write; the client should retry later."""

    code = "unavailable"


class StoreUnavailable(Exception):
    """An adapter could not reach its AWS service (throttled, down, timed out).

    Internal: the post service reacts to it (spool to S3); it never reaches a
    client as such.
    """


class DuplicateIdempotencyKey(Exception):
    """The author already used this Idempotency-Key for a live record."""

    def __init__(self, post_id: str, fingerprint: str) -> None:
        super().__init__(post_id)
        self.post_id = post_id
        self.fingerprint = fingerprint


class PostExists(Exception):
    """A post with this id is already stored: a fold-in ran twice, or a
    retried write had committed. `stored` is that post, when it was read."""

    def __init__(self, post_id: str, stored=None) -> None:
        super().__init__(post_id)
        self.post_id = post_id
        self.stored = stored


class StateChanged(Exception):
    """The post's state moved under us (a concurrent delete or replay)."""
