"""The port to the primary service, and its generic JSON ingest adapter.

Recovery replays posts to the primary through the `Upstream` interface. An
adapter turns every answer (or silence) into one of four outcomes, so the
replay job never looks at HTTP itself:

- `DONE`: the primary has the post (200/201 with an id, or 409 "already there").
  An answer that shows another post (the author used the same key on the
  primary itself) is not: see `another_post_under_the_key`.
- `RETRY_AFTER`: 429 or 503; wait at least `retry_after_seconds`.
- `TRANSIENT`: other 5xx, 408, resets, refusals, timeouts, a 3xx or a 2xx
  without an id; back off and send again. Resending is safe because every
  request carries the same Idempotency-Key.
- `PERMANENT`: any other 4xx; dead-letter the post with `status` and `detail`.
- `UNAUTHORIZED`: 401, our token was refused; stop the replay (the posts
  wait, and no post is dead-lettered for an operator's mistake).

A post deleted here after it was replayed is deleted on the primary too
(`Upstream.delete`): `DELETE {base_url}{ingest_path}/{upstream_id}`, where
200, 204 and 404 (already gone) are `DONE`, and any other answer is
classified as above.

Only the standard library is used: this module ships in the Lambda zip.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from chalicelib.config import UpstreamSettings
from chalicelib.core.clock import parse_iso
from chalicelib.core.parsing import JsonRejected, ascii_integer, loads_json
from chalicelib.core.redaction import redacted

# A 429/503 without a usable Retry-After still means "slow down": wait this long.
DEFAULT_RETRY_AFTER_SECONDS = 1.0
# One Lambda run lasts at most 15 minutes; a longer wait is the next run's business,
# and a bogus far-future date must not park a post for days.
MAX_RETRY_AFTER_SECONDS = 900.0
# X-RateLimit-Reset values at or above this (2001-09-09) are epoch seconds;
# below it they are seconds from now. No window lasts 31 years.
EPOCH_THRESHOLD = 1_000_000_000
BODY_EXCERPT_CHARS = 500
_MAX_BODY_BYTES = 64 * 1024
_SPACE_RE = re.compile(r"\s+")


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


# The answers to a delete that mean the copy is gone (404: gone already, or
# the primary removed it itself).
DELETE_DONE_STATUSES = frozenset({200, 204, 404})


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


def comparable_text(text: str) -> str:
    """Text as two copies of one post agree on it: a primary may trim or
    re-wrap whitespace, so runs of it count as one space."""
    return _SPACE_RE.sub(" ", text).strip()


def another_post_under_the_key(
    post: UpstreamPost, answered: SendResult, resend: Callable[[UpstreamPost], SendResult]
) -> SendResult:
    """What to do when the primary answered a send with a post that is not
    this one: the author used this post's Idempotency-Key on the primary
    itself, for another post, and the primary handed that one back.

    Send again under the Lifeboat id as the key: it is fixed per post, so a
    resend of the resend is still idempotent. If the Lifeboat id was the
    key already, there is nothing safe left to try: a dead letter, with the
    reason."""
    if post.idempotency_key is not None:
        return resend(replace(post, idempotency_key=None))
    return SendResult(
        Outcome.PERMANENT,
        status=answered.status,
        detail=f"the primary answered with another post ({answered.upstream_id}) for this post's Idempotency-Key",
        rate_limit=answered.rate_limit,
    )


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP
    date. Clamped to [0, MAX_RETRY_AFTER_SECONDS]; None when absent or unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = float(text)
    else:
        moment = _parse_http_date(text)
        if moment is None:
            return None
        seconds = moment.timestamp() - now
    return _clamp(seconds)


def parse_rate_limit_reset(value: str | None, now: float) -> float | None:
    """Seconds until the rate-limit window resets, from X-RateLimit-Reset.

    Primaries disagree on the format, so all three are accepted:
    epoch seconds (GitHub), seconds from now (IETF draft), and an ISO 8601
    date such as `2017-06-02T15:00:00.000Z` (Mastodon). Numbers at or above
    EPOCH_THRESHOLD are taken as epoch seconds. Clamped like Retry-After.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        moment = parse_iso(text)
        return None if moment is None else _clamp(moment.timestamp() - now)
    if not math.isfinite(number):
        return None
    return _clamp(number - now if number >= EPOCH_THRESHOLD else number)


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimit | None:
    """The X-RateLimit-* headers, or None when the primary sent none of them."""
    limit = _parse_int(headers.get("X-RateLimit-Limit"))
    remaining = _parse_int(headers.get("X-RateLimit-Remaining"))
    reset = parse_rate_limit_reset(headers.get("X-RateLimit-Reset"), now)
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimit(limit=limit, remaining=remaining, reset_after_seconds=reset)


def _parse_http_date(text: str) -> datetime | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return _assume_utc(moment)


def _assume_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    return ascii_integer(value.strip())


def _clamp(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET and lose the body; surface
    the 3xx instead (it is a misconfigured URL, not an answer)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _default_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects())


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class GenericIngestUpstream:
    """The generic JSON ingest protocol: `POST {base_url}{ingest_path}` with a
    bearer token and an Idempotency-Key; `GET {base_url}{health_path}`.

    `opener` is a urllib OpenerDirector (tests and proxies); `clock` gives
    epoch seconds for turning dates in headers into waits.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        health_path: str = "/health",
        ingest_path: str = "/posts",
        timeout_seconds: float = 5.0,
        opener: urllib.request.OpenerDirector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base_url = checked_base_url(base_url)
        if not token or any(char in token for char in "\r\n"):
            # The message must not quote the token.
            raise ValueError("token must be non-empty and a single line")
        self._base_url = base_url
        self._token = token
        self._health_url = self._base_url + health_path
        self._ingest_url = self._base_url + ingest_path
        self._timeout = timeout_seconds
        self._opener = opener or _default_opener()
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: UpstreamSettings, **kwargs) -> GenericIngestUpstream:
        return cls(
            settings.url,
            settings.token,
            health_path=settings.health_path,
            ingest_path=settings.ingest_path,
            timeout_seconds=settings.timeout_seconds,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"GenericIngestUpstream(base_url={self._base_url!r}, timeout_seconds={self._timeout!r})"

    def check_health(self) -> bool:
        """True only for a 2xx within the timeout; refusals, timeouts, 3xx,
        4xx and 5xx are all "not healthy"."""
        request = urllib.request.Request(self._health_url, method="GET")  # noqa: S310 - scheme checked in __init__
        try:
            answer = self._exchange(request)
        except (http.client.HTTPException, OSError):
            return False
        return 200 <= answer.status < 300

    def send(self, post: UpstreamPost) -> SendResult:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._ingest_url,
            data=json.dumps(post.to_payload()).encode("utf-8"),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Idempotency-Key": post.effective_idempotency_key,
            },
        )
        try:
            answer = self._exchange(request)
        except (http.client.HTTPException, OSError) as exc:
            # Refused, reset, timed out, or closed without an answer. The post
            # may or may not have arrived; the Idempotency-Key makes a resend safe.
            return SendResult(Outcome.TRANSIENT, detail=type(exc).__name__)
        result = self._classify(answer)
        if result.outcome is Outcome.DONE and _shows_another_post(answer.body, post):
            return another_post_under_the_key(post, result, self.send)
        return result

    def delete(self, copy: UpstreamDelete) -> SendResult:
        """Delete the primary's copy of a post; a repeat finds it gone (404: done)."""
        if copy.upstream_id is None:
            return no_upstream_id(copy)
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            f"{self._ingest_url}/{urllib.parse.quote(copy.upstream_id, safe='')}",
            method="DELETE",
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        try:
            answer = self._exchange(request)
        except (http.client.HTTPException, OSError) as exc:
            return SendResult(Outcome.TRANSIENT, detail=type(exc).__name__)
        now = self._clock()
        rate_limit = parse_rate_limit(answer.headers, now)
        if answer.status in DELETE_DONE_STATUSES:
            return SendResult(Outcome.DONE, status=answer.status, rate_limit=rate_limit)
        return self._failure(answer, now, rate_limit)

    def _exchange(self, request: urllib.request.Request) -> _Answer:
        return exchange(self._opener, request, self._timeout)

    def _classify(self, answer: _Answer) -> SendResult:
        now = self._clock()
        status = answer.status
        rate_limit = parse_rate_limit(answer.headers, now)
        upstream_id = _body_id(answer.body)
        if (status in (200, 201) and upstream_id is not None) or status == 409:
            return SendResult(Outcome.DONE, upstream_id=upstream_id, status=status, rate_limit=rate_limit)
        return self._failure(answer, now, rate_limit)

    def _failure(self, answer: _Answer, now: float, rate_limit: RateLimit | None) -> SendResult:
        """Any answer that is not done: wait, unauthorized, permanent or transient."""
        status = answer.status
        detail = self._excerpt(answer.body)
        wait = retry_after_result(answer, now, detail, rate_limit)
        if wait is not None:
            return wait
        if status == 401:
            return SendResult(Outcome.UNAUTHORIZED, status=status, detail=detail, rate_limit=rate_limit)
        # 408 is the server timing out our request: as retryable as our own timeout.
        outcome = Outcome.PERMANENT if 400 <= status < 500 and status != 408 else Outcome.TRANSIENT
        return SendResult(outcome, status=status, detail=detail, rate_limit=rate_limit)

    def _excerpt(self, body: bytes) -> str:
        """The start of an error body for the dead-letter record. A primary
        that echoes the request must not leak the token into it."""
        text = redacted(body.decode("utf-8", "replace"), self._token)
        return text[:BODY_EXCERPT_CHARS]


def checked_base_url(base_url: str) -> str:
    """An adapter's base URL without its trailing slash; only http(s), so
    urllib never opens a file: or custom scheme."""
    if not base_url.startswith(("http://", "https://")):
        raise ValueError("base_url must be an http(s) URL")
    return base_url.rstrip("/")


def exchange(opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float) -> _Answer:
    """One request; an HTTP error status is an answer, not an exception."""
    try:
        with opener.open(request, timeout=timeout) as response:
            return _Answer(response.status, response.headers, response.read(_MAX_BODY_BYTES))
    except urllib.error.HTTPError as exc:
        with exc:
            return _Answer(exc.code, exc.headers, exc.read(_MAX_BODY_BYTES))


def retry_after_result(answer: _Answer, now: float, detail: str, rate_limit: RateLimit | None) -> SendResult | None:
    """RETRY_AFTER for a 429 or 503 (the primary asks us to wait), else None."""
    if answer.status not in (429, 503):
        return None
    wait = parse_retry_after(answer.headers.get("Retry-After"), now)
    return SendResult(
        Outcome.RETRY_AFTER,
        retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS if wait is None else wait,
        status=answer.status,
        detail=detail,
        rate_limit=rate_limit,
    )


def _body_id(body: bytes) -> str | None:
    """The `id` of a JSON object body, as a string; None when there is none."""
    document = json_object(body)
    value = document.get("id") if document is not None else None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def json_object(body: bytes) -> dict | None:
    """A JSON object body, or None for anything else."""
    try:
        document = loads_json(body)
    except JsonRejected:
        return None
    return document if isinstance(document, dict) else None


def _shows_another_post(body: bytes, post: UpstreamPost) -> bool:
    """True when the primary's answer shows a post whose author or text is
    not this post's. Only what the answer holds is compared: an answer with
    the id alone cannot show anything. `created_at` is not compared: the
    author's own retry of this post on the primary has the primary's time,
    and it is the same post."""
    shown = json_object(body) or {}
    text, author = shown.get("text"), shown.get("author")
    if isinstance(author, str) and author != post.author:
        return True
    return isinstance(text, str) and comparable_text(text) != comparable_text(post.text)
