"""The one place where domain errors become HTTP: the status of each error,
and the JSON body in our shape or in Mastodon's."""

from __future__ import annotations

from chalice import Response

from chalicelib import errors
from chalicelib.api.responses import JSON

_STATUS_BY_ERROR = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
    # The base class itself, and any subclass not listed: a 400, not a
    # crash of this map. error_response looks classes up along the MRO, so
    # the most specific listed class decides.
    errors.LifeboatError: 400,
}
STORE_RETRY_AFTER_SECONDS = 5


def error_response(error: errors.LifeboatError) -> Response:
    status = next(_STATUS_BY_ERROR[cls] for cls in type(error).__mro__ if cls in _STATUS_BY_ERROR)
    headers = {"Content-Type": JSON}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="lifeboat"'
    if isinstance(error, errors.RetryLater):
        headers["Retry-After"] = str(error.retry_after)
    return Response(body={"error": error.code, "message": error.message}, status_code=status, headers=headers)


def mastodon_error_response(error: errors.LifeboatError) -> Response:
    """Mastodon's error shape: `{"error": "<human-readable text>"}`, with
    the same statuses as the native API."""
    native = error_response(error)
    return Response(body={"error": error.message}, status_code=native.status_code, headers=native.headers)


def oauth_error_response(error: errors.LifeboatError) -> Response:
    """RFC 6749's error shape (section 5.2), for the token and revocation
    endpoints: `{"error": "<code>", "error_description": "<text>"}`; a
    client that failed to authenticate is a 401 with a Basic challenge."""
    native = error_response(error)
    headers = {**native.headers, "Cache-Control": "no-store"}
    if isinstance(error, errors.OAuthClientRefused):
        headers["WWW-Authenticate"] = 'Basic realm="lifeboat"'
    body = {"error": error.code, "error_description": error.message}
    return Response(body=body, status_code=native.status_code, headers=headers)


def as_domain_error(exc: errors.LifeboatError | errors.StoreUnavailable) -> errors.LifeboatError:
    """What a client is told: a store outage is a 503 with Retry-After."""
    if isinstance(exc, errors.StoreUnavailable):
        # Reads and admin writes have no spool: tell the client when to retry.
        return errors.Unavailable(
            "storage is temporarily unavailable", retry_after=STORE_RETRY_AFTER_SECONDS, code="unavailable"
        )
    return exc
