"""A Mastodon primary's API as the mirror protocol's change feed: pages of
the same change documents the generic primary's `/lifeboat/changes` serves,
so the mirror consumes both alike.

- **Accounts:** `GET /api/v2/admin/accounts?origin=local&status=active`
  (the token needs `admin:read:accounts`), read upward from the highest id
  seen with `min_id`, so each new account arrives once; a full crawl every
  `crawl_every_seconds` lists them all again, then `status=suspended`, so
  suspensions, lifted suspensions and new display names arrive too.
- **Follows:** in that crawl, `GET /api/v1/accounts/:id/following` of each
  active local account, local followees only, at most
  `crawl_requests_per_fetch` requests per page. Unfollows (`active: false`)
  only from a list read whole within one page that has exactly the
  account's `following_count` entries (a hidden list, or one the admin's
  mutes and blocks thin out, has fewer), against the mirror's own follows
  (`followees_of`).
- **Posts:** `GET /api/v1/timelines/public?local=true`, upward with `min_id`:
  public posts only, no reblogs. A status id is the time its transaction
  began (Mastodon's `timestamp_id` uses `now()`), so a post may commit after
  a younger one with a higher id; the feed never moves past a post younger
  than `posts_settle_seconds`, so such a late one is not passed over.

`fetch` answers the mirror's one port type, `FeedAnswer`, as the generic
feed does, its failures classified by the same `change_feed.refusal`:
429/503 wait, other answers and no answer back off, 401 and 403 (a token
short of `admin:read:accounts`) stop. A failure after a page already holds
changes ends the page there instead, with a cursor that resumes right
after them.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from chalicelib.config import MastodonFeedSettings, UpstreamSettings
from chalicelib.core.parsing import JsonRejected, loads_json
from chalicelib.errors import StoreUnavailable
from chalicelib.observability import logger
from chalicelib.upstream.change_feed import refusal, unanswered
from chalicelib.upstream.mastodon_feed import (
    ACTIVE,
    CRAWL,
    SUSPENDED,
    TAIL,
    Crawl,
    FeedCursor,
    Follower,
    account_change,
    decode_cursor,
    encode_cursor,
    follow_change,
    is_id,
    link_param,
    mastodon_id_at,
    post_change,
)
from chalicelib.upstream.port import FeedAnswer, FeedOutcome
from chalicelib.upstream.transport import ACCEPT_JSON, NETWORK_ERRORS, Transport

if TYPE_CHECKING:
    from urllib.request import OpenerDirector

ADMIN_ACCOUNTS = "/api/v2/admin/accounts"
PUBLIC_TIMELINE = "/api/v1/timelines/public"
# Mastodon's largest pages: admin accounts, statuses, accounts of a list.
ACCOUNTS_PAGE_MAX, STATUSES_PAGE_MAX, FOLLOWING_PAGE_MAX = 200, 40, 80
# A page of 200 admin accounts or 40 statuses is far above the 64 KiB an
# ingest answer may have.
MAX_PAGE_BYTES = 8 * 1024 * 1024
# Our token refused (401) or short of a scope (403): no page can succeed.
REFUSED = frozenset({401, 403})


class _Unread(Exception):
    """A request of the page that got no usable answer: `answer` is what
    the mirror is told if the page holds nothing yet."""

    def __init__(self, answer: FeedAnswer) -> None:
        super().__init__(answer.detail)
        self.answer = answer


@dataclass
class _Page:
    """A page being filled: its changes, the cursor after the last of them,
    and the requests it has made."""

    cursor: FeedCursor
    limit: int
    changes: list[dict] = field(default_factory=list)
    requests: int = 0

    @property
    def room(self) -> int:
        return self.limit - len(self.changes)


class MastodonChangeSource:
    """The mirror's change feed from a Mastodon primary at `base_url`, read with the
    admin token `token`. `clock` gives epoch seconds (crawl schedule, the
    first post id, Retry-After dates). `followees_of(username)` gives the
    local followees the mirror holds as active for a follower; without it,
    the feed tells no unfollows."""

    def __init__(
        self,
        base_url: str,
        token: str,
        settings: MastodonFeedSettings | None = None,
        timeout_seconds: float = 5.0,
        opener: OpenerDirector | None = None,
        clock: Callable[[], float] = time.time,
        followees_of: Callable[[str], Collection[str]] | None = None,
    ) -> None:
        if not token or any(char in token for char in "\r\n"):
            raise ValueError("token must be non-empty and a single line")
        self._http = Transport(base_url, timeout_seconds, opener)
        self._token = token
        self._settings = settings or MastodonFeedSettings()
        self._clock = clock
        self._followees_of = followees_of

    @classmethod
    def from_settings(
        cls,
        upstream: UpstreamSettings,
        feed: MastodonFeedSettings,
        followees_of: Callable[[str], Collection[str]] | None = None,
    ) -> MastodonChangeSource:
        return cls(
            upstream.url, upstream.token, feed, timeout_seconds=upstream.timeout_seconds, followees_of=followees_of
        )

    def __repr__(self) -> str:
        return f"MastodonChangeSource(base_url={self._http.base_url!r}, settings={self._settings!r})"

    def fetch(self, after: str | None, limit: int) -> FeedAnswer:
        """The page after cursor `after` (None, or a cursor this source did
        not write: from the beginning), of at most `limit` changes; or the
        failure that kept it from holding any."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        cursor = decode_cursor(after) if after is not None else None
        if after is not None and cursor is None:
            # Safe, as every change is a state; the operator should know why a crawl began.
            logger.warning("mirror cursor unreadable; the Mastodon feed starts over", extra={"chars": len(after)})
        page = _Page(cursor or self._first_cursor(), limit)
        try:
            if page.cursor.turn == CRAWL and page.cursor.crawl is not None:
                more = self._crawl(page)
            else:
                more = self._tail(page)
        except _Unread as unread:
            if not page.changes:
                return unread.answer
            # What this page holds stays read; the next page meets the failure again.
            more = True
        return FeedAnswer(FeedOutcome.PAGE, changes=page.changes, next=encode_cursor(page.cursor), more=more)

    def _first_cursor(self) -> FeedCursor:
        since = self._clock() - self._settings.retention_days * 86400
        return FeedCursor(posts_after=mastodon_id_at(since))

    # The tail: new accounts, then new posts.

    def _tail(self, page: _Page) -> bool:
        if page.cursor.check_accounts:
            if self._read_new_accounts(page):
                return True
            page.cursor = replace(page.cursor, check_accounts=False)
            if page.room == 0:
                return True
        # Timeline pages of 40 until the page is full: the mirror's cost per
        # page (its state write, a part-filled batch) then falls on up to
        # `limit` posts, not 40.
        while True:
            statuses = self._list(
                PUBLIC_TIMELINE, page, min(page.room, STATUSES_PAGE_MAX), local="true", min_id=page.cursor.posts_after
            )
            settled_below = int(mastodon_id_at(self._clock() - self._settings.posts_settle_seconds))
            ordered = _ascending(statuses.entities)
            settled = [status for status in ordered if int(status["id"]) < settled_below]
            page.changes.extend(change for change in map(post_change, settled) if change is not None)
            if settled:
                # Past the skipped ones too (reblogs, other visibilities): never read twice.
                page.cursor = replace(page.cursor, posts_after=settled[-1]["id"])
            # A young post may still have older ids committing around it: the
            # feed stops before it, and is at its end for now.
            if not (statuses.full and settled and len(settled) == len(ordered)):
                return self._caught_up(page)
            if page.room == 0:
                return True

    def _read_new_accounts(self, page: _Page) -> bool:
        """Active accounts above the highest id seen, oldest first; True
        when the page was full (there may be more)."""
        room = min(page.room, ACCOUNTS_PAGE_MAX)
        accounts = self._list(ADMIN_ACCOUNTS, page, room, min_id=page.cursor.accounts_after, **_local(ACTIVE))
        ordered = _ascending(accounts.entities)
        page.changes.extend(change for change in map(account_change, ordered) if change is not None)
        if ordered:
            highest = _highest(page.cursor.accounts_after, ordered[-1]["id"])
            page.cursor = replace(page.cursor, accounts_after=highest)
        return accounts.full

    def _caught_up(self, page: _Page) -> bool:
        """The tail has reached the present: a crawl's turn if one is under
        way or due, else the end of the feed for now."""
        cursor = replace(page.cursor, check_accounts=True)
        last = cursor.crawled_at
        if cursor.crawl is None and (last is None or self._clock() - last >= self._settings.crawl_every_seconds):
            cursor = cursor.with_crawl(Crawl())
        page.cursor = replace(cursor, turn=CRAWL if cursor.crawl is not None else TAIL)
        return cursor.crawl is not None

    # The crawl: every account, active then suspended, and each active one's follows.

    def _crawl(self, page: _Page) -> bool:
        """One step of the crawl, within the request budget; then the tail's
        turn again, so posts never wait for a whole crawl."""
        budget = self._settings.crawl_requests_per_fetch
        while page.room > 0 and page.cursor.crawl is not None:
            crawl = page.cursor.crawl
            left = budget - page.requests
            if crawl.follower is not None and left >= 1:
                self._read_following(page, crawl.follower, budget)
            elif crawl.follower is None and crawl.status == ACTIVE and left >= 2:
                # A listing is worth its request only with one left for a follower's list.
                self._start_followers(page, crawl, budget)
            elif crawl.status == SUSPENDED and left >= 1:
                self._read_suspended(page, crawl)
            else:
                break
        page.cursor = replace(page.cursor, turn=TAIL)
        return True

    def _start_followers(self, page: _Page, crawl: Crawl, budget: int) -> None:
        """The next active accounts below the crawl's position: each one's
        account change, then its following list, one account after another."""
        asked = min(ACCOUNTS_PAGE_MAX, budget - page.requests - 1, page.room)
        accounts = self._list(ADMIN_ACCOUNTS, page, asked, max_id=crawl.before, **_local(ACTIVE))
        for account in _descending(accounts.entities):
            if page.requests >= budget or page.room == 0:
                return
            position = page.cursor.crawl
            change = account_change(account)
            if change is None:
                page.cursor = page.cursor.with_crawl(replace(position, before=account["id"]))
                continue
            expected = _following_count(account)
            fits_here = self._fits(expected, page.room, budget - page.requests)
            if page.changes and not fits_here and self._fits(expected, page.limit, budget - 1):
                return  # a fresh page reads this list whole, so its unfollows can be told
            follower = Follower(account["id"], change["username"])
            page.changes.append(change)
            page.cursor = replace(
                page.cursor.with_crawl(replace(position, follower=follower)),
                accounts_after=_highest(page.cursor.accounts_after, account["id"]),
            )
            self._read_following(page, follower, budget, expected)
            if page.cursor.crawl.follower is not None:
                return
        if not accounts.full:
            page.cursor = page.cursor.with_crawl(Crawl(SUSPENDED))

    def _fits(self, followees: int | None, room: int, requests: int) -> bool:
        """Whether a list of `followees` (and its account) can be read whole
        with this much room and these requests left; only then are its
        unfollows told, so only then does it matter."""
        if self._followees_of is None or followees is None:
            return True
        return followees + 1 <= room and followees // FOLLOWING_PAGE_MAX + 2 <= requests

    def _read_following(self, page: _Page, follower: Follower, budget: int, expected: int | None = None) -> None:
        """`follower`'s following list, page by page, within the budget; the
        crawl moves past the follower once its list ends. A list read whole
        in this page, with as many entries as the account's
        `following_count`, is the whole truth: the follows the mirror holds
        and the list lacks are unfollows."""
        path = f"/api/v1/accounts/{urllib.parse.quote(follower.id, safe='')}/following"
        whole = follower.after is None and expected is not None and self._followees_of is not None
        entries, seen = 0, set()
        while page.requests < budget and page.room > 0:
            try:
                listed = self._list(path, page, min(page.room, FOLLOWING_PAGE_MAX), max_id=follower.after)
            except _Unread as unread:
                if unread.answer.status != 404:
                    raise
                listed, whole = _Listed([], 0, 1, None), False  # the account went away since it was listed
            follows = [change for change in (follow_change(follower.username, f) for f in listed.entities) if change]
            page.changes.extend(follows)
            entries += listed.count
            seen.update(change["followee"] for change in follows)
            crawl = page.cursor.crawl
            if listed.next_max_id is None or listed.count == 0:
                if whole and entries == expected:
                    self._tell_unfollows(page, follower.username, seen)
                page.cursor = page.cursor.with_crawl(replace(crawl, before=follower.id, follower=None))
                return
            follower = replace(follower, after=listed.next_max_id)
            page.cursor = page.cursor.with_crawl(replace(crawl, follower=follower))

    def _tell_unfollows(self, page: _Page, follower: str, seen: set[str]) -> None:
        """`active: false` for each follow the mirror holds that the whole
        list no longer has, if they all fit in the page (else the next crawl
        tells them)."""
        try:
            gone = sorted(set(self._followees_of(follower)) - seen)
        except StoreUnavailable:
            return
        if len(gone) <= page.room:
            page.changes.extend({"type": "follow", "follower": follower, "followee": f, "active": False} for f in gone)

    def _read_suspended(self, page: _Page, crawl: Crawl) -> None:
        accounts = self._list(
            ADMIN_ACCOUNTS, page, min(page.room, ACCOUNTS_PAGE_MAX), max_id=crawl.before, **_local(SUSPENDED)
        )
        ordered = _descending(accounts.entities)
        page.changes.extend(change for change in map(account_change, ordered) if change is not None)
        if not accounts.full:
            page.cursor = replace(page.cursor.with_crawl(None), crawled_at=self._clock())
        elif ordered:
            page.cursor = page.cursor.with_crawl(replace(crawl, before=ordered[-1]["id"]))

    # HTTP.

    def _list(self, path: str, page: _Page, limit: int, **query: str | None) -> _Listed:
        """A list answer; raises _Unread."""
        params = {name: value for name, value in query.items() if value is not None}
        url = f"{path}?{urllib.parse.urlencode({**params, 'limit': limit})}"
        page.requests += 1
        try:
            answer = self._http.exchange("GET", url, self._token, headers=ACCEPT_JSON, max_body_bytes=MAX_PAGE_BYTES)
        except NETWORK_ERRORS as exc:
            raise _Unread(unanswered(exc)) from exc
        if answer.status != 200:
            raise _Unread(refusal(answer, self._clock(), self._token, REFUSED))
        try:
            listed = loads_json(answer.body)
        except JsonRejected:
            listed = None
        if not isinstance(listed, list):
            raise _Unread(FeedAnswer(FeedOutcome.TRANSIENT, detail=f"{path} did not answer with a list", status=200))
        entities = [entity for entity in listed if isinstance(entity, dict) and is_id(entity.get("id"))]
        return _Listed(entities, len(listed), limit, link_param(answer.headers.get("Link"), "next", "max_id"))


@dataclass(frozen=True)
class _Listed:
    """One list answer: the entities with a usable id, how many the answer
    held, how many were asked for, and the `max_id` of its `next` link."""

    entities: list[dict]
    count: int
    asked: int
    next_max_id: str | None

    @property
    def full(self) -> bool:
        """A full page: there may be more (Mastodon's own test for a next link)."""
        return self.count >= self.asked


def _following_count(admin_account: dict) -> int | None:
    """How many the account follows, as Mastodon counts them (never hidden)."""
    count = (admin_account.get("account") or {}).get("following_count")
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def _local(status: str) -> dict[str, str]:
    return {"origin": "local", "status": status}


def _ascending(entities: list[dict]) -> list[dict]:
    """Mastodon answers newest first, also for `min_id`; ids are numbers."""
    return sorted(entities, key=lambda entity: int(entity["id"]))


def _descending(entities: list[dict]) -> list[dict]:
    return sorted(entities, key=lambda entity: int(entity["id"]), reverse=True)


def _highest(first: str, second: str) -> str:
    return max(first, second, key=int)
