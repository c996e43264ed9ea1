"""The generic primary's change feed, for the mirror.

`GET {base_url}{changes_path}?after=<cursor>&limit=<n>` with the bearer
token answers `200 {"changes": [...], "next": "<cursor>", "more": bool}`.
Answers are classified as for ingest (`upstream.transport`): 429 and 503
wait for their Retry-After, other failures are transient, 401 stops the
mirror. A Mastodon primary's feed (`upstream.mastodon_changes`: accounts
API, public timeline, following lists) answers the same `FeedAnswer`s,
classified by the same `refusal` and `unanswered`.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable

from chalicelib.config import UpstreamSettings
from chalicelib.core.parsing import JsonRejected, loads_json
from chalicelib.upstream.port import FeedAnswer, FeedOutcome
from chalicelib.upstream.transport import ACCEPT_JSON, NETWORK_ERRORS, Answer, Transport, excerpt, retry_after_result

MAX_PAGE = 500
# A page of 500 changes of up to 5,000 characters each, with room to spare.
MAX_PAGE_BYTES = 16 * 1024 * 1024
MAX_CURSOR_CHARS = 1024
# The generic protocol's "our token was refused"; a Mastodon primary adds
# 403, a token short of a scope.
UNAUTHORIZED_STATUSES = frozenset({401})


class GenericChangeFeed:
    def __init__(self, transport: Transport, path: str, token: str, clock: Callable[[], float] = time.time) -> None:
        self._transport = transport
        self._path = path
        self._token = token
        self._clock = clock

    def __repr__(self) -> str:
        return f"GenericChangeFeed(base_url={self._transport.base_url!r}, path={self._path!r})"

    @classmethod
    def from_settings(cls, settings: UpstreamSettings) -> GenericChangeFeed:
        return cls(Transport(settings.url, settings.timeout_seconds), settings.changes_path, settings.token)

    def fetch(self, after: str | None, limit: int) -> FeedAnswer:
        query = {"limit": str(min(max(limit, 1), MAX_PAGE))}
        if after is not None:
            query["after"] = after
        path = f"{self._path}?{urllib.parse.urlencode(query)}"
        try:
            answer = self._transport.exchange(
                "GET", path, token=self._token, headers=ACCEPT_JSON, max_body_bytes=MAX_PAGE_BYTES
            )
        except NETWORK_ERRORS as exc:
            return unanswered(exc)
        if answer.status != 200:
            return refusal(answer, self._clock(), self._token)
        return _page(answer.body)


def unanswered(exc: Exception) -> FeedAnswer:
    """No answer at all (one of NETWORK_ERRORS): back off and ask again."""
    return FeedAnswer(FeedOutcome.TRANSIENT, detail=type(exc).__name__)


def refusal(answer: Answer, now: float, token: str, unauthorized: frozenset[int] = UNAUTHORIZED_STATUSES) -> FeedAnswer:
    """A change feed's answer that is not a 200: UNAUTHORIZED for our token
    refused, RETRY_AFTER for a 429 or 503 (its Retry-After, or the ingest
    default), TRANSIENT for anything else. The detail never holds `token`."""
    detail = f"HTTP {answer.status}: {excerpt(answer.body, token)}"
    if answer.status in unauthorized:
        return FeedAnswer(FeedOutcome.UNAUTHORIZED, detail=detail, status=answer.status)
    wait = retry_after_result(answer, now, detail, None)
    if wait is not None:
        return FeedAnswer(
            FeedOutcome.RETRY_AFTER, retry_after_seconds=wait.retry_after_seconds, detail=detail, status=answer.status
        )
    return FeedAnswer(FeedOutcome.TRANSIENT, detail=detail, status=answer.status)


def _page(body: bytes) -> FeedAnswer:
    """A 200's body as a page; one that is not a page is transient (a
    primary dying mid-answer sends a truncated body)."""
    try:
        document = loads_json(body)
    except JsonRejected:
        return FeedAnswer(FeedOutcome.TRANSIENT, detail="the page is not JSON")
    if not isinstance(document, dict):
        return FeedAnswer(FeedOutcome.TRANSIENT, detail="the page is not a JSON object")
    changes, cursor, more = document.get("changes"), document.get("next"), document.get("more")
    if not isinstance(changes, list) or not isinstance(more, bool):
        return FeedAnswer(FeedOutcome.TRANSIENT, detail="the page lacks changes or more")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        return FeedAnswer(FeedOutcome.TRANSIENT, detail="the page's next cursor is missing or too long")
    return FeedAnswer(FeedOutcome.PAGE, changes=changes, next=cursor, more=more)
