"""The port to the primary service: the `Upstream` interface Recovery replays
through, and the values that cross it. Pure: no I/O, no HTTP.

An adapter turns every answer (or silence) into one of five outcomes, so the
replay job never looks at HTTP itself:

- `DONE`: the primary has the post (or, for a delete, no longer has it).
- `RETRY_AFTER`: the primary asked us to wait at least `retry_after_seconds`.
- `TRANSIENT`: no usable answer; back off and send again. Resending is safe
  because every request carries the same Idempotency-Key.
- `PERMANENT`: the primary refused this post; dead-letter it with `status`
  and `detail`.
- `UNAUTHORIZED`: our own token was refused; stop the replay (the posts
  wait, and no post is dead-lettered for an operator's mistake).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    DONE = "done"
    RETRY_AFTER = "retry_after"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    # Our own credentials were refused: no post can succeed until an
    # operator fixes the token, so the replay stops instead of
    # dead-lettering the whole backlog one post at a time.
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class UpstreamPost:
    """A post as the primary receives it. `in_reply_to` is the parent's
    *upstream* id: the caller must replay a parent before its replies."""

    id: str
    author: str
    text: str
    created_at: str
    in_reply_to: str | None = None
    idempotency_key: str | None = None
    # Sends of this post before this one (earlier runs and retries): when
    # > 0, an earlier send may have landed without us hearing the answer.
    previous_attempts: int = 0
    spoiler_text: str = ""
    language: str | None = None

    @property
    def effective_idempotency_key(self) -> str:
        """The client's own key when it gave one, so a client retrying against
        the primary directly cannot create a twin; else the Lifeboat id."""
        return self.idempotency_key or self.id

    def to_payload(self) -> dict:
        return {
            "id": self.id,
            "author": self.author,
            "text": self.text,
            "created_at": self.created_at,
            "in_reply_to": self.in_reply_to,
        }


@dataclass(frozen=True)
class UpstreamDelete:
    """A copy on the primary to delete: the post `id` (Lifeboat's) by
    `author`, known there as `upstream_id` (None if the primary never said)."""

    id: str
    author: str
    upstream_id: str | None


@dataclass(frozen=True)
class RateLimit:
    """What the primary said about its rate limit; any part may be missing."""

    limit: int | None = None
    remaining: int | None = None
    reset_after_seconds: float | None = None


@dataclass(frozen=True)
class SendResult:
    """The outcome of one send. `detail` never contains the upstream token."""

    outcome: Outcome
    upstream_id: str | None = None
    retry_after_seconds: float | None = None
    status: int | None = None
    detail: str = ""
    rate_limit: RateLimit | None = None


class Upstream(Protocol):
    """The primary service, as Recovery needs it. Implementations never raise
    for network or HTTP trouble: they answer with an outcome instead."""

    def check_health(self) -> bool: ...

    def send(self, post: UpstreamPost) -> SendResult: ...

    def delete(self, copy: UpstreamDelete) -> SendResult: ...


def no_upstream_id(copy: UpstreamDelete) -> SendResult:
    """A delete that cannot be sent: the primary never gave the post's id."""
    detail = f"the primary never gave an id for post {copy.id}; delete it there by hand"
    return SendResult(Outcome.PERMANENT, detail=detail)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits a uniform random
    time in [0, min(cap, base * 2**n)). Full jitter spreads a crowd of
    retrying callers best (AWS Architecture Blog, "Exponential Backoff And
    Jitter"). `rng` returns floats in [0, 1); inject one to test."""

    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("Backoff needs 0 < base_seconds <= cap_seconds")

    def delay(self, attempt: int, at_least: float = 0.0) -> float:
        """The wait before retry number `attempt` (0 for the first retry),
        never shorter than `at_least` (a Retry-After the primary asked for)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # Past 2**62 the ceiling is the cap anyway; the bound keeps floats finite.
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** min(attempt, 62))
        return max(at_least, self.rng() * ceiling)


# -- the mirror's change feed ---------------------------------------------------
#
# Both kinds of primary answer the mirror with these (`upstream.change_feed`
# for the generic protocol, `upstream.mastodon_changes` for a Mastodon
# primary's API), classified alike by `change_feed.refusal`.


class FeedOutcome(StrEnum):
    PAGE = "page"
    # 429 or 503: wait `retry_after_seconds`, then ask again.
    RETRY_AFTER = "retry_after"
    # No usable answer (5xx, a network error, a body that is not a page):
    # back off and ask again.
    TRANSIENT = "transient"
    # Our token was refused (or, on Mastodon, lacks a scope): the mirror
    # stops and raises an alarm.
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class FeedAnswer:
    """One answer of a change feed. For a PAGE, `changes` are the raw change
    documents (the mirror parses each), `next` the cursor after them and
    `more` whether the feed holds more now."""

    outcome: FeedOutcome
    changes: list = field(default_factory=list)
    next: str | None = None
    more: bool = False
    retry_after_seconds: float = 0.0
    detail: str = ""  # never the token
    status: int | None = None  # the HTTP status of a failure, if there was an answer
