"""The mirror's change feed from a Mastodon primary: `MastodonChangeSource`
against the fake Mastodon as a real server on loopback. Every change once
and in order across pages; failures as waits, back-offs and stops; a page
that dies half-way loses nothing; only public, local, original posts."""

from __future__ import annotations

import time

import pytest

from chalicelib.config import MastodonFeedSettings
from chalicelib.upstream.mastodon_changes import MastodonChangeSource
from chalicelib.upstream.port import FeedOutcome
from devtools.fake_mastodon import FakeMastodon, Fault

pytestmark = pytest.mark.e2e
ADMIN = "admin-token-for-the-mirror"
LOCALS = [f"user{i}" for i in range(7)]


class Clock:
    """The time, moved on by `offset` seconds (the fake's ids use the time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def server():
    with FakeMastodon({}, admin_tokens={ADMIN: "read admin:read:accounts", "no-admin": "read"}) as fake:
        yield fake


def seed(server: FakeMastodon, posts: int = 12) -> dict:
    """Seven local accounts, a suspended one and a remote one; `posts`
    public posts; each local account follows the next three (and the
    remote one, which is never mirrored)."""
    for name in LOCALS:
        server.add_account(name, display_name=name.upper())
    server.add_account("gone", suspended=True)
    server.add_account("far@remote.example")
    ids = [server.add_status(LOCALS[i % len(LOCALS)], f"post {i} <&>\nline two") for i in range(posts)]
    follows = {name: [LOCALS[(i + step) % len(LOCALS)] for step in (1, 2, 3)] for i, name in enumerate(LOCALS)}
    for follower, followees in follows.items():
        for followee in followees:
            server.add_follow(follower, followee)
        server.add_follow(follower, "far@remote.example")
    return {"posts": ids, "follows": follows}


class FollowMirror:
    """The mirror's follow graph, as far as the feed needs it."""

    def __init__(self) -> None:
        self.follows: dict[str, set[str]] = {}

    def apply(self, changes: list[dict]) -> None:
        for change in changes:
            if change["type"] == "follow":
                followees = self.follows.setdefault(change["follower"], set())
                (followees.add if change["active"] else followees.discard)(change["followee"])

    def followees_of(self, follower: str) -> set[str]:
        return set(self.follows.get(follower, ()))


def unfollows(changes: list[dict]) -> list[tuple[str, str]]:
    return [(c["follower"], c["followee"]) for c in changes if c["type"] == "follow" and not c["active"]]


def source(
    server: FakeMastodon, clock: Clock | None = None, token: str = ADMIN, mirror: FollowMirror | None = None, **settings
) -> MastodonChangeSource:
    """The feed; posts need not settle unless a test says so."""
    chosen = MastodonFeedSettings(**{"posts_settle_seconds": 0, **settings})
    followees_of = mirror.followees_of if mirror is not None else None
    return MastodonChangeSource(
        server.url, token, chosen, timeout_seconds=2, clock=clock or Clock(), followees_of=followees_of
    )


def drain(feed: MastodonChangeSource, after: str | None = None, limit: int = 3, max_pages: int = 500, mirror=None):
    """Pages until the feed's end, each applied to `mirror` when given; a
    failure asks again with the same cursor (as the mirror does after its
    wait). Returns (changes, cursor, failures)."""
    changes, failures = [], []
    for _ in range(max_pages):
        page = feed.fetch(after, limit)
        if page.outcome != FeedOutcome.PAGE:
            failures.append(page)
            continue
        changes.extend(page.changes)
        if mirror is not None:
            mirror.apply(page.changes)
        after = page.next
        if not page.more:
            return changes, after, failures
    raise AssertionError("the feed never reached its end")


def expected_changes(seeded: dict) -> list[dict]:
    """The whole feed from a fresh start: new accounts, oldest first; the
    posts, oldest first; then the crawl: each active account, newest first,
    with its local follows (newest follow first); then the suspended."""

    def account(name, suspended=False):
        display = "" if suspended else name.upper()
        return {
            "type": "account",
            "username": name,
            "display_name": display,
            "suspended": suspended,
        }

    accounts = [account(name) for name in LOCALS]
    posts = [
        {
            "type": "post",
            "id": post_id,
            "author": LOCALS[i % len(LOCALS)],
            "text": f"post {i} <&>\nline two",
            "in_reply_to": None,
            "deleted": False,
        }
        for i, post_id in enumerate(seeded["posts"])
    ]
    crawl = []
    for name in reversed(LOCALS):
        crawl.append(account(name))
        crawl.extend(
            {"type": "follow", "follower": name, "followee": followee, "active": True}
            for followee in reversed(seeded["follows"][name])
        )
    return accounts + posts + crawl + [account("gone", suspended=True)]


def without_times(changes: list[dict]) -> list[dict]:
    assert all(isinstance(change.get("created_at", ""), str) for change in changes)
    return [{key: value for key, value in change.items() if key != "created_at"} for change in changes]


def test_pages_of_accounts_posts_and_follows_carry_every_change_once_in_order(server):
    seeded = seed(server)
    feed = source(server)

    changes, _, failures = drain(feed, limit=3)

    assert failures == []
    assert without_times(changes) == expected_changes(seeded)
    stats = server.stats()
    # Three or more pages of each: accounts (7 at 3 a page), posts, follows.
    assert stats["admin_account_requests"] >= 3 and stats["public_timeline_requests"] >= 3
    assert stats["following_requests"] >= 3 * len(LOCALS)


def test_after_the_end_only_new_things_come_and_the_crawl_comes_back_on_schedule(server):
    seed(server)
    clock = Clock()
    feed = source(server, clock, crawl_every_seconds=600)
    _, cursor, _ = drain(feed, limit=50)

    server.add_account("newcomer", display_name="N")
    fresh = server.add_status("newcomer", "hello")
    server.suspend("user3")
    quiet, cursor, _ = drain(feed, cursor, limit=50)

    assert [(c["type"], c.get("username") or c.get("id")) for c in quiet] == [("account", "newcomer"), ("post", fresh)]

    clock.offset += 600
    again, _, _ = drain(feed, cursor, limit=50)

    suspended = {c["username"] for c in again if c["type"] == "account" and c["suspended"]}
    assert suspended == {"gone", "user3"}
    assert "user3" not in {c["follower"] for c in again if c["type"] == "follow"}


def test_a_follow_gone_from_a_list_read_whole_is_told_as_an_unfollow_and_a_hidden_list_tells_none(server):
    seeded = seed(server)
    clock, mirror = Clock(), FollowMirror()
    feed = source(server, clock, mirror=mirror, crawl_every_seconds=600)
    first, cursor, _ = drain(feed, limit=50, mirror=mirror)
    assert unfollows(first) == []
    assert mirror.follows == {name: set(followees) for name, followees in seeded["follows"].items()}

    server.remove_follow("user0", "user1")
    server.add_follow("user0", "user5")
    server.hide_following("user2")
    clock.offset += 600
    again, _, _ = drain(feed, cursor, limit=50, mirror=mirror)

    assert unfollows(again) == [("user0", "user1")]
    assert mirror.follows["user0"] == {"user2", "user3", "user5"}
    # A hidden list reads empty, but its following_count does not: no unfollows.
    assert mirror.follows["user2"] == set(seeded["follows"]["user2"])


def test_a_list_too_long_for_one_page_tells_no_unfollows(server):
    seed(server)
    clock, mirror = Clock(), FollowMirror()
    # Three local followees and a remote one never fit a page of 3 changes.
    feed = source(server, clock, mirror=mirror, crawl_every_seconds=600)
    _, cursor, _ = drain(feed, limit=3, mirror=mirror)
    server.remove_follow("user0", "user1")
    clock.offset += 600

    again, _, _ = drain(feed, cursor, limit=3, mirror=mirror)

    assert unfollows(again) == [] and "user1" in mirror.follows["user0"]


def test_a_rate_limit_and_a_busy_server_are_waits_a_crash_a_back_off_and_the_same_cursor_works_after(server):
    seed(server)
    feed = source(server)
    first = feed.fetch(None, 3)
    path = "/api/v2/admin/accounts"
    server.fail_next(Fault(path, 429, retry_after="7"), Fault(path, 503), Fault(path, 500))

    errors = [feed.fetch(first.next, 3) for _ in range(3)]
    page = feed.fetch(first.next, 3)

    assert [(e.outcome, e.status, e.retry_after_seconds) for e in errors] == [
        (FeedOutcome.RETRY_AFTER, 429, 7.0),
        (FeedOutcome.RETRY_AFTER, 503, 1.0),
        (FeedOutcome.TRANSIENT, 500, 0.0),
    ]
    assert [c["username"] for c in first.changes + page.changes] == LOCALS[:6]


def test_a_refused_token_or_one_without_the_admin_scope_stops_the_mirror(server):
    seed(server)
    for token, status in (("revoked", 401), ("no-admin", 403)):
        answer = source(server, token=token).fetch(None, 10)
        assert (answer.outcome, answer.status, answer.changes) == (FeedOutcome.UNAUTHORIZED, status, [])
        assert token not in repr(answer)


def test_pages_that_die_half_way_resume_from_the_last_cursor_with_nothing_lost_or_twice(server):
    seeded = seed(server)
    server.fail_next(
        Fault("/api/v2/admin/accounts", hang_up=True),
        Fault("/api/v1/timelines/public", hang_up=True),
        Fault("/api/v1/timelines/public", hang_up=True),
        Fault("/api/v1/accounts/", hang_up=True),
    )

    changes, _, failures = drain(source(server), limit=3)

    assert without_times(changes) == expected_changes(seeded)
    # Two pages had read nothing yet and failed; the other two ended early
    # with what they held (new accounts before the posts, an account before
    # its follows).
    assert len(failures) == 2 and {answer.outcome for answer in failures} == {FeedOutcome.TRANSIENT}


def test_a_failure_part_way_through_a_crawl_page_ends_the_page_there(server):
    seeded = seed(server)
    server.fail_next(Fault("/api/v1/accounts/", 500))
    feed = source(server)
    pages, cursor = [], None
    while cursor is None or pages[-1].more:
        pages.append(feed.fetch(cursor, 50))
        cursor = pages[-1].next

    # The crawl's first account was read when its follows failed: that page
    # ends with it, and the follows come in a later page, once.
    assert [page.changes[-1]["username"] for page in pages if len(page.changes) == 1] == ["user6"]
    assert without_times([c for page in pages for c in page.changes]) == expected_changes(seeded)


def test_only_public_local_original_posts_are_mirrored(server):
    for name in ("alice", "bob"):
        server.add_account(name)
    server.add_account("far@remote.example")
    public = server.add_status("alice", "public")
    thread = server.add_status("alice", "my own thread", in_reply_to_id=public)
    hidden = [
        server.add_status("alice", "unlisted", visibility="unlisted"),
        server.add_status("alice", "private", visibility="private"),
        server.add_status("alice", "direct", visibility="direct"),
        server.add_status("bob", "boost", reblog_of=public),
        server.add_status("far@remote.example", "remote"),
    ]
    last = server.add_status("bob", "bob's public")

    changes, _, _ = drain(source(server), limit=2)

    posts = [change for change in changes if change["type"] == "post"]
    assert [(p["id"], p["in_reply_to"]) for p in posts] == [(public, None), (thread, public), (last, None)]
    assert not {p["id"] for p in posts} & set(hidden)


def test_a_post_that_commits_late_with_an_older_id_is_not_passed_over(server):
    server.add_account("alice")
    clock = Clock()
    feed = source(server, clock, posts_settle_seconds=10)
    settled = server.add_status("alice", "settled", created_at=clock() - 15)
    young = server.add_status("alice", "young", created_at=clock() - 5)
    first, cursor, _ = drain(feed, limit=10)

    # A transaction that began 8 s ago commits now: its id is below the young post's.
    late = server.add_status("alice", "late", created_at=clock() - 8)
    clock.offset += 10
    then, _, _ = drain(feed, cursor, limit=10)

    assert [c["id"] for c in first if c["type"] == "post"] == [settled]
    assert [c["id"] for c in then if c["type"] == "post"] == [late, young]


def test_posts_older_than_the_retention_are_not_read(server):
    server.add_account("alice")
    clock = Clock()
    server.add_status("alice", "last month", created_at=clock() - 30 * 86400)
    recent = server.add_status("alice", "yesterday", created_at=clock() - 86400)

    changes, _, _ = drain(source(server, clock, retention_days=7), limit=10)

    assert [c["id"] for c in changes if c["type"] == "post"] == [recent]


def test_the_crawl_stays_within_its_request_budget_per_page(server):
    seeded = seed(server)
    budget = 4
    feed = source(server, crawl_requests_per_fetch=budget)
    cursor, crawl_requests, changes = None, [], []
    for _ in range(200):
        before = server.stats()
        page = feed.fetch(cursor, 2)
        after = server.stats()
        changes.extend(page.changes)
        crawled = after["following_requests"] - before["following_requests"]
        if crawled:
            crawl_requests.append(crawled + after["admin_account_requests"] - before["admin_account_requests"])
        cursor = page.next
        if not page.more:
            break

    assert without_times(changes) == expected_changes(seeded)
    assert len(crawl_requests) >= 5 and max(crawl_requests) <= budget


def test_a_full_page_of_long_posts_is_read_whole_and_costs_one_request_per_40_posts(server):
    server.add_account("alice")
    ids = [server.add_status("alice", f"{i} " + "long words " * 180) for i in range(400)]

    changes, _, _ = drain(source(server), limit=40)

    assert [c["id"] for c in changes if c["type"] == "post"] == ids
    # 11 pages read the 400 (the first shares its room with the account),
    # and the tail after the crawl asks once more and finds nothing.
    assert server.stats()["public_timeline_requests"] == 12


def test_a_corrupted_cursor_starts_over(server):
    seed(server)
    feed = source(server)
    first = feed.fetch(None, 5)
    page = feed.fetch(first.next, 5)

    for corrupted in ("", "not a cursor", page.next[:-3], page.next[::-1], "e30"):
        assert feed.fetch(corrupted, 5).changes == first.changes


def test_one_page_reads_timeline_pages_until_it_is_full(server):
    server.add_account("alice")
    ids = [server.add_status("alice", f"post {i}") for i in range(100)]

    page = source(server).fetch(None, 500)

    # One admin list, then 40 + 40 + 20 posts in one page of the mirror.
    assert [c["id"] for c in page.changes if c["type"] == "post"] == ids
    assert server.stats()["public_timeline_requests"] == 3
