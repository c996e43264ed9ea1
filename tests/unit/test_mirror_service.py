"""The mirror job over in-memory fakes: pages applied in order, malformed
changes skipped and counted, waits and failures classified, the cursor
kept, and a replayed post of ours recognised."""

from __future__ import annotations

import hashlib

import pytest

from chalicelib.core.clock import iso_at
from chalicelib.mirror import layout
from chalicelib.mirror.service import (
    REPLAY_CLOCK_SKEW_SECONDS,
    REPLAY_SETTLE_SECONDS,
    TRANSIENT_RETRIES,
    Mirror,
    status_of,
)
from chalicelib.mirror.state import Progress
from chalicelib.upstream.port import FeedAnswer, FeedOutcome
from devtools.fakes.mastodon import InMemoryFollowStore
from devtools.fakes.mirror import InMemoryMirrorState, InMemoryMirrorStore, ScriptedChangeFeed

CREATED = "2026-12-01T00:00:00.000Z"
NOW = 1_796_000_000.0  # 2026-11-30: the clock the tests run on


def account(name):
    return {"type": "account", "username": name, "display_name": name, "created_at": CREATED, "suspended": False}


def post(n, author="bob", created_at=CREATED, **extra):
    return {"type": "post", "id": f"p{n}", "author": author, "text": f"post {n}", "created_at": created_at,
            "in_reply_to": None, "deleted": False, **extra}  # fmt: skip


class World:
    def __init__(self, changes):
        self.feed = ScriptedChangeFeed(changes)
        self.follows = InMemoryFollowStore(max_following=100)
        self.store = InMemoryMirrorStore(self.follows)
        self.state = InMemoryMirrorState()
        self.slept: list[float] = []
        self.mirror = Mirror(self.feed, self.store, self.state, 7, clock=lambda: NOW, sleep=self.slept.append,
                             page_size=10)  # fmt: skip

    def run(self, budget=60.0):
        return self.mirror.run(lambda: budget)


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


FEED = [
    account("alice"),
    account("bob"),
    {"type": "credential", "username": "alice", "token_sha256": digest("t"), "scopes": "read", "revoked": False},
    {"type": "follow", "follower": "alice", "followee": "bob", "active": True},
    *[post(n) for n in range(25)],
]


def test_a_run_mirrors_the_whole_feed_in_pages_and_records_the_end():
    world = World(FEED)
    report = world.run()
    assert (report.pages, report.accounts, report.posts, report.stop) == (3, 2, 25, "end")
    assert world.follows.following("alice") == ["bob"]
    assert world.store.grant(digest("t")).scopes == frozenset({"read"})
    state = world.state.load()
    assert (state.cursor, state.accounts, state.posts) == (str(len(FEED)), 2, 25)
    assert status_of(state, NOW)["lag_seconds"] == 0.0


def test_a_second_run_starts_from_the_cursor():
    world = World(FEED)
    world.run()
    world.feed.changes.append(post(99))
    report = world.run()
    assert (report.pages, report.posts) == (1, 1)
    assert world.feed.requests[-1] == (str(len(FEED)), 10)


def test_malformed_changes_are_skipped_and_counted_and_never_stop_the_feed():
    world = World([post(1), {"type": "post", "id": 5}, "junk", post(2, text="\ud800"), post(3)])
    report = world.run()
    assert (report.malformed, report.posts, report.stop) == (3, 2, "end")
    assert world.state.load().malformed == 3
    assert status_of(world.state.load(), NOW)["malformed"] == 3  # what an operator sees in /status


def test_duplicates_and_overlaps_store_each_post_once():
    world = World([post(1), post(1), post(2), post(1)])
    world.run()
    world.state.record(Progress(cursor="1"))  # the primary's cursor overlaps what was applied
    assert world.run().posts == 2
    stored = [world.store.post(layout.mirrored_post_id(CREATED, f"p{n}")) for n in (1, 2, 3)]
    assert [post.upstream_id if post else None for post in stored] == ["p1", "p2", None]


def test_retry_after_is_waited_when_the_budget_allows():
    world = World([post(1)])
    world.feed.fail_next(FeedAnswer(FeedOutcome.RETRY_AFTER, retry_after_seconds=2.0))
    report = world.run()
    assert world.slept == [2.0] and report.posts == 1


def test_a_retry_after_past_the_budget_ends_the_run_with_the_cursor_kept():
    world = World([post(1)])
    world.feed.fail_next(FeedAnswer(FeedOutcome.RETRY_AFTER, retry_after_seconds=120.0))
    report = world.run(budget=30.0)
    assert (report.stop, report.pages, world.slept) == ("retry_after", 0, [])


def test_transient_failures_back_off_then_end_the_run_with_the_error():
    world = World([post(1)])
    world.feed.fail_next(*[FeedAnswer(FeedOutcome.TRANSIENT, detail="HTTP 500")] * (TRANSIENT_RETRIES + 1))
    report = world.run()
    assert report.stop == "transient" and len(world.slept) == TRANSIENT_RETRIES
    assert world.slept == sorted(world.slept) and world.slept[0] > 0
    assert "HTTP 500" in world.state.load().last_error
    assert world.run().posts == 1 and world.state.load().last_error is None


def test_unauthorized_stops_the_mirror_with_its_error():
    world = World([post(1)])
    world.feed.fail_next(FeedAnswer(FeedOutcome.UNAUTHORIZED))
    report = world.run()
    assert (report.stop, report.pages) == ("unauthorized", 0)
    assert world.state.load().last_error.startswith("unauthorized")


def test_posts_we_replayed_after_the_outage_began_are_not_stored_twice():
    world = World([post(1, created_at="2026-12-02T00:00:00.000Z"), post(2, created_at="2026-12-02T00:00:01.000Z")])
    world.state.note_outage("2026-12-01T12:00:00.000Z")
    world.store.replayed.add("p1")
    report = world.mirror.run(lambda: 60.0, backlog_empty=lambda: True)
    assert (report.posts, report.posts_ours) == (1, 1)
    assert world.state.load().outage_began_at is None  # feed's end reached with the backlog empty


def test_the_outage_mark_stays_while_the_backlog_is_not_empty():
    world = World([post(1)])
    world.state.note_outage("2026-12-01T12:00:00.000Z")
    world.mirror.run(lambda: 60.0, backlog_empty=lambda: False)
    assert world.state.load().outage_began_at == "2026-12-01T12:00:00.000Z"


def test_posts_replayed_while_the_primary_was_up_are_recognised_and_the_mark_waits_for_the_feed():
    # No outage was ever seen: a client posted here while the primary was up, and the replay sent it.
    world = World([post(1, created_at=iso_at(NOW - 30))])
    world.mirror.note_replay(NOW - 60)
    world.store.replayed.add("p1")
    report = world.mirror.run(lambda: 60.0, backlog_empty=lambda: True)
    assert (report.posts, report.posts_ours) == (0, 1)
    # The feed may not show every post sent yet: the mark stays until REPLAY_SETTLE_SECONDS pass.
    assert world.state.load().outage_began_at == iso_at(NOW - 60 - REPLAY_CLOCK_SKEW_SECONDS)
    later = Mirror(world.feed, world.store, world.state, 7, clock=lambda: NOW + REPLAY_SETTLE_SECONDS + 1)
    later.run(lambda: 60.0, backlog_empty=lambda: True)
    assert world.state.load().outage_began_at is None


@pytest.mark.parametrize("budget", [0.0, 2.0])
def test_no_budget_no_request(budget):
    world = World([post(1)])
    assert world.run(budget=budget).stop == "budget"
    assert world.feed.requests == []


def test_a_primary_that_keeps_asking_to_wait_ends_the_run():
    world = World([post(1)])
    world.feed.fail_next(*[FeedAnswer(FeedOutcome.RETRY_AFTER, retry_after_seconds=1.0)] * 10)
    report = world.run()
    assert (report.stop, world.slept) == ("retry_after", [1.0] * TRANSIENT_RETRIES)
