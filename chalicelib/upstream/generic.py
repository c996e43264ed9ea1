"""The generic JSON ingest adapter of the `Upstream` port.

`POST {base_url}{ingest_path}` with a bearer token and an Idempotency-Key;
`GET {base_url}{health_path}` for health. Beyond the answers every primary
shares (`upstream.transport`):

- `DONE`: 200/201 with an id, or 409 "already there". An answer that shows
  another post (the author used the same key on the primary itself) is not:
  see `transport.another_post_under_the_key`.
- `TRANSIENT`: other 5xx, 408, a 3xx or a 2xx without an id.
- `PERMANENT`: any other 4xx.
- `UNAUTHORIZED`: 401, our one token was refused.

A post deleted here after it was replayed is deleted on the primary too:
`DELETE {base_url}{ingest_path}/{upstream_id}`.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from chalicelib.config import UpstreamSettings
from chalicelib.upstream.headers import parse_rate_limit
from chalicelib.upstream.port import Outcome, RateLimit, SendResult, UpstreamDelete, UpstreamPost, no_upstream_id
from chalicelib.upstream.transport import (
    ACCEPT_JSON,
    NETWORK_ERRORS,
    Answer,
    Transport,
    another_post_under_the_key,
    body_id,
    comparable_text,
    created,
    deleted,
    failure,
    json_object,
    unreachable,
)

if TYPE_CHECKING:
    from urllib.request import OpenerDirector

# 408 is the server timing out our request: as retryable as our own timeout.
RETRYABLE_4XX = frozenset({408})


class GenericIngestUpstream:
    """The generic JSON ingest protocol, with one token for every author.

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
        opener: OpenerDirector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = Transport(base_url, timeout_seconds, opener)
        if not token or any(char in token for char in "\r\n"):
            # The message must not quote the token.
            raise ValueError("token must be non-empty and a single line")
        self._token = token
        self._health_path = health_path
        self._ingest_path = ingest_path
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
        return (
            f"GenericIngestUpstream(base_url={self._http.base_url!r}, timeout_seconds={self._http.timeout_seconds!r})"
        )

    def check_health(self) -> bool:
        return self._http.is_healthy(self._health_path)

    def send(self, post: UpstreamPost) -> SendResult:
        headers = {**ACCEPT_JSON, "Idempotency-Key": post.effective_idempotency_key}
        try:
            answer = self._http.exchange("POST", self._ingest_path, self._token, post.to_payload(), headers)
        except NETWORK_ERRORS as exc:
            return unreachable(exc)
        result = self._classify(answer)
        if result.outcome is Outcome.DONE and _shows_another_post(answer.body, post):
            return another_post_under_the_key(post, result, self.send)
        return result

    def delete(self, copy: UpstreamDelete) -> SendResult:
        """Delete the primary's copy of a post; a repeat finds it gone (404: done)."""
        if copy.upstream_id is None:
            return no_upstream_id(copy)
        path = f"{self._ingest_path}/{urllib.parse.quote(copy.upstream_id, safe='')}"
        try:
            answer = self._http.exchange("DELETE", path, self._token, headers=ACCEPT_JSON)
        except NETWORK_ERRORS as exc:
            return unreachable(exc)
        now = self._clock()
        rate_limit = parse_rate_limit(answer.headers, now)
        return deleted(answer, rate_limit) or self._failure(answer, now, rate_limit)

    def _classify(self, answer: Answer) -> SendResult:
        now = self._clock()
        rate_limit = parse_rate_limit(answer.headers, now)
        if answer.status == 409:
            return SendResult(Outcome.DONE, upstream_id=body_id(answer.body), status=409, rate_limit=rate_limit)
        return created(answer, rate_limit) or self._failure(answer, now, rate_limit)

    def _failure(self, answer: Answer, now: float, rate_limit: RateLimit | None) -> SendResult:
        """Any answer that is not done; a 401 refused our own token."""
        result = failure(answer, now, rate_limit, self._token, RETRYABLE_4XX)
        return replace(result, outcome=Outcome.UNAUTHORIZED) if answer.status == 401 else result


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
