"""One contract, two implementations: the stream consumer's store on
DynamoDB (moto) and its in-memory fake. A run is applied once: its claim
says how many of its records are in, and a second delivery adds only what
is new; the oldest pending post is a min, and stale once it left."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.accounts.rate_limits import posts_limit, read_counted_posts
from chalicelib.stream.effects import Effects, FeedLane
from chalicelib.stream.store import AlreadyApplied, Run
from devtools.fakes.stream import InMemoryStreamStore

AT = "2026-12-03T00:00:00.000Z"


@pytest.fixture(params=["dynamodb", "memory"])
def store(request):
    if request.param == "memory":
        return InMemoryStreamStore()
    request.getfixturevalue("moto")
    return wiring.stream_store()


def effects(pending=0, deletes=0, dead_letters=0) -> Effects:
    made = Effects()
    made.counts.update(pending=pending, deletes=deletes, dead_letters=dead_letters)
    made.public = FeedLane(1, "01JAAAAAAAAAAAAAAAAAAAAA01")
    return made


def counts(store) -> tuple[int, int, int]:
    status = store.status()
    return status.pending, status.deletes, status.dead_letters


def test_a_run_is_applied_once(store):
    store.apply(Run("event-1", "post-1", 3), effects(pending=3), AT, 0)
    with pytest.raises(AlreadyApplied) as again:
        store.apply(Run("event-1", "post-1", 3), effects(pending=3), AT, 0)
    assert again.value.records == 3
    store.apply(Run("event-9", "post-9", 1), effects(pending=-1, dead_letters=1), AT, 0)
    assert counts(store) == (2, 0, 1)


def test_a_longer_delivery_of_a_run_adds_only_its_new_records(store):
    store.apply(Run("event-1", "post-1", 2), effects(pending=2), AT, 0)
    with pytest.raises(AlreadyApplied) as seen:
        store.apply(Run("event-1", "post-1", 5), effects(pending=5), AT, 0)

    store.apply(Run("event-1", "post-1", 5, applied=seen.value.records), effects(pending=3, deletes=1), AT, 0)

    assert counts(store) == (5, 1, 0)
    with pytest.raises(AlreadyApplied):
        store.apply(Run("event-1", "post-1", 5, applied=2), effects(pending=3), AT, 0)


def test_the_oldest_pending_post_is_the_least_seen_and_stale_once_it_left(store):
    for post_id in ("01B", "01A", "01C"):
        store.lower_oldest(post_id)
    store.mark_oldest_left(["01C"])
    assert (store.status().oldest_pending_id, store.status().oldest_stale) == ("01A", False)

    store.mark_oldest_left(["01B", "01A"])
    assert (store.status().oldest_pending_id, store.status().oldest_stale) == ("01A", True)
    assert not store.replace_stale_oldest("01B", "01C"), "only the stale one is replaced"
    assert store.replace_stale_oldest("01A", "01B")
    assert (store.status().oldest_pending_id, store.status().oldest_stale) == ("01B", False)

    store.mark_oldest_left(["01B"])
    assert store.replace_stale_oldest("01B", None)
    assert store.status().oldest_pending_id is None


def counted_posts(store, author: str, window: int) -> set[str]:
    """What the rate limit reads of a window (the request path's GetItem on DynamoDB)."""
    if isinstance(store, InMemoryStreamStore):
        return store.post_windows.get((author, window), set())
    charge = posts_limit(30).charge_at(author, window * 60)
    return read_counted_posts(wiring.dynamodb(), wiring.settings().table_name, charge)


def test_post_windows_are_sets_counting_a_post_once_however_often_it_comes(store):
    store.count_posts({("alice", 7): {"a1", "a2"}, ("bob", 7): {"b1"}})
    store.count_posts({("alice", 7): {"a2", "a3"}, ("alice", 8): {"a4"}})
    store.count_posts({("alice", 7): {"a1"}})

    assert counted_posts(store, "alice", 7) == {"a1", "a2", "a3"}
    assert counted_posts(store, "alice", 8) == {"a4"}
    assert counted_posts(store, "bob", 7) == {"b1"}
    assert counted_posts(store, "bob", 8) == set()
