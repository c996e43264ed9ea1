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
author (`DELETE /api/v1/statuses/:id`). Standard library only, like
upstream.py.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from chalicelib.config import UpstreamSettings
from chalicelib.core.parsing import JsonRejected, loads_json
from chalicelib.core.redaction import redacted
from chalicelib.errors import StoreUnavailable
from chalicelib.upstream.generic import (
    BODY_EXCERPT_CHARS,
    DELETE_DONE_STATUSES,
    Outcome,
    SendResult,
    UpstreamDelete,
    UpstreamPost,
    _Answer,
    _body_id,
    _default_opener,
    another_post_under_the_key,
    checked_base_url,
    comparable_text,
    exchange,
    json_object,
    no_upstream_id,
    parse_rate_limit,
    retry_after_result,
)

# How far back a resend looks for an earlier attempt that landed: Mastodon's
# largest page of an account's statuses.
SEARCH_LIMIT = 40
_TAG_RE = re.compile(r"<[^>]+>")


def plain_text(content_html: str) -> str:
    """Mastodon's rendered `content` back to comparable text: paragraphs and
    line breaks to spaces, tags dropped (a link's hidden parts are spans, so
    the full URL survives), entities decoded, whitespace collapsed."""
    text = re.sub(r"<br\s*/?>|</p>\s*<p>", " ", content_html)
    return comparable_text(html.unescape(_TAG_RE.sub("", text)))


class MastodonUpstream:
    """The `Upstream` port for a Mastodon server. `tokens(author)` gives the
    author's access token there, or None when none is registered (the post
    is then dead-lettered until the admin registers one and retries it)."""

    def __init__(
        self,
        base_url: str,
        tokens: Callable[[str], str | None],
        timeout_seconds: float = 5.0,
        opener: urllib.request.OpenerDirector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base_url = checked_base_url(base_url)
        self._tokens = tokens
        self._timeout = timeout_seconds
        self._opener = opener or _default_opener()
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: UpstreamSettings, tokens: Callable[[str], str | None]) -> MastodonUpstream:
        return cls(settings.url, tokens, timeout_seconds=settings.timeout_seconds)

    def __repr__(self) -> str:
        return f"MastodonUpstream(base_url={self._base_url!r}, timeout_seconds={self._timeout!r})"

    def check_health(self) -> bool:
        try:
            answer = self._exchange("GET", "/api/v1/instance")
        except (http.client.HTTPException, OSError):
            return False
        return 200 <= answer.status < 300

    def send(self, post: UpstreamPost) -> SendResult:
        token = self._token_for(post.author)
        if isinstance(token, SendResult):
            return token
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
        except (http.client.HTTPException, OSError) as exc:
            # The post may have landed; the Idempotency-Key (for an hour) and
            # the search before the next resend keep a retry from twinning it.
            return SendResult(Outcome.TRANSIENT, detail=type(exc).__name__)
        result = self._classify(answer, token)
        if result.outcome is Outcome.DONE and _shows_another_status(answer.body, post):
            return another_post_under_the_key(post, result, self.send)
        return result

    def delete(self, copy: UpstreamDelete) -> SendResult:
        """Delete the status as its author; 200 (the deleted status) and 404
        (gone already, so a repeat of a delete that landed) are done."""
        if copy.upstream_id is None:
            return no_upstream_id(copy)
        token = self._token_for(copy.author)
        if isinstance(token, SendResult):
            return token
        path = f"/api/v1/statuses/{urllib.parse.quote(copy.upstream_id, safe='')}"
        try:
            answer = self._exchange("DELETE", path, token)
        except (http.client.HTTPException, OSError) as exc:
            return SendResult(Outcome.TRANSIENT, detail=type(exc).__name__)
        if answer.status in DELETE_DONE_STATUSES:
            rate_limit = parse_rate_limit(answer.headers, self._clock())
            return SendResult(Outcome.DONE, status=answer.status, rate_limit=rate_limit)
        return self._classify(answer, token)

    def _token_for(self, author: str) -> str | SendResult:
        """The author's token, or the outcome for a post that cannot go without one."""
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
        account_id = _body_id(me.body) if me.status == 200 else None
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
    ) -> _Answer:
        sent = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(self._base_url + path, data=data, method=method, headers=sent)  # noqa: S310
        return exchange(self._opener, request, self._timeout)

    def _classify(self, answer: _Answer, token: str, looking: bool = False) -> SendResult:
        """Mastodon's answers as outcomes: 200 with an id is done; 429/503
        wait; 401/403/404/422 are this post's (or its author's token's)
        permanent problem; anything else is transient. While looking for an
        earlier attempt, even a 2xx without what we asked for is transient."""
        now = self._clock()
        status = answer.status
        rate_limit = parse_rate_limit(answer.headers, now)
        upstream_id = _body_id(answer.body)
        if status in (200, 201) and upstream_id is not None and not looking:
            return SendResult(Outcome.DONE, upstream_id=upstream_id, status=status, rate_limit=rate_limit)
        detail = redacted(answer.body.decode("utf-8", "replace"), token)[:BODY_EXCERPT_CHARS]
        wait = retry_after_result(answer, now, detail, rate_limit)
        if wait is not None:
            return wait
        outcome = Outcome.PERMANENT if 400 <= status < 500 and status not in (408, 409) else Outcome.TRANSIENT
        return SendResult(outcome, status=status, detail=detail, rate_limit=rate_limit)


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
