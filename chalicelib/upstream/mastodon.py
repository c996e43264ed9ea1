"""Mastodon as the primary: replay each post as its author through
`POST /api/v1/statuses`, with the author's own access token.

Mastodon keeps an Idempotency-Key for one hour only, and its create call
takes no `created_at`, so a resend more than an hour after an attempt whose
answer was lost would make a twin. Before any resend (the post's
`previous_attempts` > 0) this adapter therefore looks for the post among
the author's most recent statuses upstream (`GET /api/v1/accounts/:id/
statuses` of the token's own account) and, if it is there, reports it done
with that id instead of posting again. docs/DESIGN.md gives the residual
risk. A post deleted here after it was replayed is deleted there as its
author (`DELETE /api/v1/statuses/:id`). The HTTP and the answers every
primary shares are `upstream.transport`'s.

Each author's token is the one they made their posts with during the outage
(kept by the write path, `kept`) if there is one, else the one the admin
registered (`tokens`). A 401 with the kept token (revoked or expired on the
primary) drops it, and the same request goes again with the registered one.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chalicelib.config import UpstreamSettings
from chalicelib.core.parsing import JsonRejected, loads_json
from chalicelib.errors import StoreUnavailable
from chalicelib.observability import logger
from chalicelib.upstream.headers import parse_rate_limit
from chalicelib.upstream.mastodon_feed import html_to_text
from chalicelib.upstream.port import Outcome, SendResult, UpstreamDelete, UpstreamPost, no_upstream_id
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

# How far back a resend looks for an earlier attempt that landed: Mastodon's
# largest page of an account's statuses.
SEARCH_LIMIT = 40
# The 4xx that are not this post's problem: 408 is the server timing out,
# and a 409 from Mastodon is not "already there" as on the generic primary.
RETRYABLE_4XX = frozenset({408, 409})
UNAUTHORIZED = 401


class KeptTokenSource(Protocol):
    """The authors' own tokens kept from their outage posts (`upstream.tokens.KeptTokens`)."""

    def get(self, username: str) -> str | None: ...

    def refused(self, username: str, token: str) -> None: ...


def plain_text(content_html: str) -> str:
    """Mastodon's rendered `content` back to comparable text: its author's
    text, whitespace collapsed."""
    return comparable_text(html_to_text(content_html))


class MastodonUpstream:
    """The `Upstream` port for a Mastodon server. `kept` gives the token an
    author posted with during the outage, if kept; `tokens(author)` the one
    the admin registered, or None (with neither, the post is dead-lettered
    until the admin registers one and retries it)."""

    def __init__(
        self,
        base_url: str,
        tokens: Callable[[str], str | None],
        timeout_seconds: float = 5.0,
        opener: OpenerDirector | None = None,
        clock: Callable[[], float] = time.time,
        kept: KeptTokenSource | None = None,
    ) -> None:
        self._http = Transport(base_url, timeout_seconds, opener)
        self._tokens = tokens
        self._kept = kept
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: UpstreamSettings, tokens: Callable[[str], str | None], kept: KeptTokenSource | None = None
    ) -> MastodonUpstream:
        return cls(settings.url, tokens, timeout_seconds=settings.timeout_seconds, kept=kept)

    def __repr__(self) -> str:
        return f"MastodonUpstream(base_url={self._http.base_url!r}, timeout_seconds={self._http.timeout_seconds!r})"

    def check_health(self) -> bool:
        return self._http.is_healthy("/api/v1/instance", ACCEPT_JSON)

    def send(self, post: UpstreamPost) -> SendResult:
        return self._as_author(post.author, lambda token: self._send_as(post, token))

    def _send_as(self, post: UpstreamPost, token: str) -> SendResult:
        try:
            if post.previous_attempts > 0:
                found = self._landed_earlier(post, token)
                if isinstance(found, SendResult):
                    return found
                if found is not None:
                    return SendResult(Outcome.DONE, upstream_id=found, status=200)
            answer = self._exchange(
                "POST",
                "/api/v1/statuses",
                token,
                body=_status_body(post),
                headers={"Idempotency-Key": post.effective_idempotency_key},
            )
        except NETWORK_ERRORS as exc:
            # The post may have landed; the Idempotency-Key (for an hour) and
            # the search before the next resend keep a retry from twinning it.
            return unreachable(exc)
        result = self._classify(answer, token)
        if result.outcome is Outcome.DONE and _shows_another_status(answer.body, post):
            return another_post_under_the_key(post, result, self.send)
        return result

    def delete(self, copy: UpstreamDelete) -> SendResult:
        """Delete the status as its author; 200 (the deleted status) and 404
        (gone already, so a repeat of a delete that landed) are done."""
        if copy.upstream_id is None:
            return no_upstream_id(copy)
        return self._as_author(copy.author, lambda token: self._delete_as(copy, token))

    def _delete_as(self, copy: UpstreamDelete, token: str) -> SendResult:
        path = f"/api/v1/statuses/{urllib.parse.quote(copy.upstream_id, safe='')}"
        try:
            answer = self._exchange("DELETE", path, token)
        except NETWORK_ERRORS as exc:
            return unreachable(exc)
        return deleted(answer, parse_rate_limit(answer.headers, self._clock())) or self._classify(answer, token)

    def _as_author(self, author: str, call: Callable[[str], SendResult]) -> SendResult:
        """`call` with the author's kept token, if any, and with the
        registered one if there is none or the primary refused it (401)."""
        try:
            kept = self._kept.get(author) if self._kept is not None else None
        except StoreUnavailable:
            return SendResult(Outcome.TRANSIENT, detail="kept token unavailable")
        if kept is not None:
            result = call(kept)
            if result.status != UNAUTHORIZED:
                return result
            logger.warning("the primary refused a kept token; trying the registered one", extra={"author": author})
            # If it cannot be dropped now, the next send is refused again and drops it then.
            with contextlib.suppress(StoreUnavailable):
                self._kept.refused(author, kept)
        token = self._token_for(author)
        return token if isinstance(token, SendResult) else call(token)

    def _token_for(self, author: str) -> str | SendResult:
        """The author's registered token, or the outcome for a post that cannot go without one."""
        try:
            token = self._tokens(author)
        except StoreUnavailable:
            return SendResult(Outcome.TRANSIENT, detail="upstream token unavailable")
        if token is None:
            return SendResult(Outcome.PERMANENT, detail=f"no upstream token registered for {author}")
        return token

    def _landed_earlier(self, post: UpstreamPost, token: str) -> str | SendResult | None:
        """The upstream id of an earlier attempt of this post, None if it is
        not among the author's recent statuses, or the failure to look."""
        me = self._exchange("GET", "/api/v1/accounts/verify_credentials", token)
        account_id = body_id(me.body) if me.status == 200 else None
        if account_id is None:
            return self._classify(me, token, looking=True)
        query = urllib.parse.urlencode({"limit": SEARCH_LIMIT, "exclude_reblogs": "true"})
        listed = self._exchange("GET", f"/api/v1/accounts/{urllib.parse.quote(account_id)}/statuses?{query}", token)
        try:
            statuses = loads_json(listed.body) if listed.status == 200 else None
        except JsonRejected:
            statuses = None
        if not isinstance(statuses, list):
            return self._classify(listed, token, looking=True)
        return next((str(status["id"]) for status in statuses if _is_same_post(status, post)), None)

    def _exchange(
        self, method: str, path: str, token: str | None = None, body: dict | None = None, headers: dict | None = None
    ) -> Answer:
        return self._http.exchange(method, path, token, body, {**ACCEPT_JSON, **(headers or {})})

    def _classify(self, answer: Answer, token: str, looking: bool = False) -> SendResult:
        """Mastodon's answers as outcomes: 200 with an id is done; 429/503
        wait; 401/403/404/422 are this post's (or its author's token's)
        permanent problem; anything else is transient. While looking for an
        earlier attempt, even a 2xx without what we asked for is transient."""
        now = self._clock()
        rate_limit = parse_rate_limit(answer.headers, now)
        done = None if looking else created(answer, rate_limit)
        return done or failure(answer, now, rate_limit, token, RETRYABLE_4XX)


def _status_body(post: UpstreamPost) -> dict:
    body = {"status": post.text, "visibility": "public"}
    if post.in_reply_to:
        body["in_reply_to_id"] = post.in_reply_to
    if post.spoiler_text:
        body["spoiler_text"] = post.spoiler_text
    if post.language:
        body["language"] = post.language
    return body


def _shows_another_status(body: bytes, post: UpstreamPost) -> bool:
    """True when the answer is a Status that is not this post (Mastodon
    answers a reused Idempotency-Key with the status made under it)."""
    shown = json_object(body)
    return shown is not None and isinstance(shown.get("content"), str) and not _is_same_post(shown, post)


def _is_same_post(status: object, post: UpstreamPost) -> bool:
    if not isinstance(status, dict) or not isinstance(status.get("content"), str) or "id" not in status:
        return False
    return (
        plain_text(status["content"]) == comparable_text(post.text)
        and (status.get("spoiler_text") or "") == post.spoiler_text
        and (str(status.get("in_reply_to_id") or "") or None) == post.in_reply_to
    )
