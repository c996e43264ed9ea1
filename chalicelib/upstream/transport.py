"""HTTP to a primary, shared by both adapters: one request through urllib,
and what the answers that mean the same on every primary come to.

- A refusal, reset, timeout or close without an answer (`NETWORK_ERRORS`)
  is `TRANSIENT` (`unreachable`): the request may or may not have arrived,
  and the Idempotency-Key makes a resend safe.
- 429 and 503 are `RETRY_AFTER`, for the Retry-After the primary gave or
  `DEFAULT_RETRY_AFTER_SECONDS`.
- 200/201 with an `id` in a JSON object body is a created post (`created`).
- For a delete, 200, 204 and 404 (gone already) are `DONE` (`deleted`).
- Any other answer is `PERMANENT` for a 4xx and `TRANSIENT` otherwise
  (`failure`); each adapter names the 4xx it retries.
- An answer that shows another post under the post's Idempotency-Key is
  handled by `another_post_under_the_key`.

Error bodies are kept (their start) for the dead-letter record, with the
token redacted. Only the standard library is used: this ships in the Lambda zip.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from chalicelib.core.parsing import JsonRejected, loads_json
from chalicelib.core.redaction import redacted
from chalicelib.upstream.headers import parse_retry_after
from chalicelib.upstream.port import Outcome, RateLimit, SendResult, UpstreamPost

# A 429/503 without a usable Retry-After still means "slow down": wait this long.
DEFAULT_RETRY_AFTER_SECONDS = 1.0
BODY_EXCERPT_CHARS = 500
# The answers to a delete that mean the copy is gone (404: gone already, or
# the primary removed it itself).
DELETE_DONE_STATUSES = frozenset({200, 204, 404})
# What a request that got no answer raises: refused, reset, timed out, closed.
NETWORK_ERRORS = (http.client.HTTPException, OSError)
ACCEPT_JSON = {"Accept": "application/json"}
_MAX_BODY_BYTES = 64 * 1024
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Answer:
    """A primary's answer: any status, error statuses included."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET and lose the body; surface
    the 3xx instead (it is a misconfigured URL, not an answer)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def default_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects())


def checked_base_url(base_url: str) -> str:
    """An adapter's base URL without its trailing slash; only http(s), so
    urllib never opens a file: or custom scheme."""
    if not base_url.startswith(("http://", "https://")):
        raise ValueError("base_url must be an http(s) URL")
    return base_url.rstrip("/")


class Transport:
    """Requests to one primary at `base_url`, each within `timeout_seconds`.

    `opener` is a urllib OpenerDirector (tests and proxies); the default one
    follows no redirects. Raises NETWORK_ERRORS when there is no answer; an
    HTTP error status is an answer, not an exception."""

    def __init__(
        self, base_url: str, timeout_seconds: float, opener: urllib.request.OpenerDirector | None = None
    ) -> None:
        self.base_url = checked_base_url(base_url)
        self.timeout_seconds = timeout_seconds
        self._opener = opener or default_opener()

    def exchange(
        self,
        method: str,
        path: str,
        token: str | None = None,
        json_body: dict | None = None,
        headers: Mapping[str, str] | None = None,
        max_body_bytes: int = _MAX_BODY_BYTES,
    ) -> Answer:
        """One request to `base_url + path`, with a bearer `token` and a JSON
        body when given; at most `max_body_bytes` of the answer are read."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        # The scheme is checked in __init__: urllib opens no file: URL here.
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=sent)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout_seconds) as response:
                return Answer(response.status, response.headers, response.read(max_body_bytes))
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, exc.headers, exc.read(max_body_bytes))

    def is_healthy(self, path: str, headers: Mapping[str, str] | None = None) -> bool:
        """True only for a 2xx within the timeout; refusals, timeouts, 3xx,
        4xx and 5xx are all "not healthy"."""
        try:
            answer = self.exchange("GET", path, headers=headers)
        except NETWORK_ERRORS:
            return False
        return 200 <= answer.status < 300


def unreachable(exc: Exception) -> SendResult:
    """No answer (one of NETWORK_ERRORS): the request may have landed; retry."""
    return SendResult(Outcome.TRANSIENT, detail=type(exc).__name__)


def created(answer: Answer, rate_limit: RateLimit | None) -> SendResult | None:
    """DONE for a 200/201 that names the post's id, else None."""
    upstream_id = body_id(answer.body)
    if answer.status in (200, 201) and upstream_id is not None:
        return SendResult(Outcome.DONE, upstream_id=upstream_id, status=answer.status, rate_limit=rate_limit)
    return None


def deleted(answer: Answer, rate_limit: RateLimit | None) -> SendResult | None:
    """DONE for an answer to a delete that means the copy is gone, else None."""
    if answer.status in DELETE_DONE_STATUSES:
        return SendResult(Outcome.DONE, status=answer.status, rate_limit=rate_limit)
    return None


def failure(
    answer: Answer, now: float, rate_limit: RateLimit | None, token: str, retryable_4xx: frozenset[int]
) -> SendResult:
    """An answer that is not done: RETRY_AFTER for 429/503, PERMANENT for
    any other 4xx but `retryable_4xx`, TRANSIENT for the rest. The detail
    is the start of the body with `token` redacted."""
    detail = excerpt(answer.body, token)
    wait = retry_after_result(answer, now, detail, rate_limit)
    if wait is not None:
        return wait
    permanent = 400 <= answer.status < 500 and answer.status not in retryable_4xx
    outcome = Outcome.PERMANENT if permanent else Outcome.TRANSIENT
    return SendResult(outcome, status=answer.status, detail=detail, rate_limit=rate_limit)


def retry_after_result(answer: Answer, now: float, detail: str, rate_limit: RateLimit | None) -> SendResult | None:
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


def excerpt(body: bytes, token: str) -> str:
    """The start of an error body for the dead-letter record. A primary
    that echoes the request must not leak the token into it."""
    text = redacted(body.decode("utf-8", "replace"), token)
    return text[:BODY_EXCERPT_CHARS]


def body_id(body: bytes) -> str | None:
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
