"""The stream consumer on the in-memory store: what each change of a post
does to the counts, markers, dirty feeds, oldest pending post and home
fan-out, and that all of it ends the same when records come twice, in
longer batches, or with the posts' shards read in another order."""

from __future__ import annotations

import itertools
import random

import pytest

from chalicelib.core.models import DELETE_PENDING, DELETED, FAILED, PENDING, REPLAYED, SENDING, Post
from chalicelib.stream.changes import decode
from chalicelib.stream.consumer import StreamConsumer
from chalicelib.stream.effects import MAX_TOUCHED_PER_CHUNK, chunks
from devtools.fakes.stream import InMemoryStreamStore

_events = itertools.count()


def image(post: Post | None) -> dict | None:
    if post is None:
        return None
    values = {"PK": f"POST#{post.id}", "SK": "POST", **post.to_record()}
    return {name: _wire(value) for name, value in values.items()}


def _wire(value) -> dict:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": value}


def record(before: Post | None, after: Post | None) -> dict:
    name = "INSERT" if before is None else ("REMOVE" if after is None else "MODIFY")
    post = after or before
    body = {"Keys": {"PK": {"S": f"POST#{post.id}"}, "SK": {"S": "POST"}}, "SequenceNumber": str(next(_events))}
    for key, value in (("OldImage", image(before)), ("NewImage", image(after))):
        if value is not None:
            body[key] = value
    return {"eventID": f"event-{next(_events)}", "eventName": name, "dynamodb": body}


def post(n: int, author: str = "alice", state: str = PENDING) -> Post:
    return Post(id=f"01JAAAAAAAAAAAAAAAAAAAAA{n:02d}", author=author, text=f"post {n}", created_at="x", state=state)


def history(*states: str, n: int, author: str = "alice") -> list[dict]:
    """The records of one post going through `states` (the first one its INSERT)."""
    versions = [post(n, author, state) for state in states]
    return [record(None, versions[0])] + [record(a, b) for a, b in itertools.pairwise(versions)]


class Fanout:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.deleted: list[str] = []

    def on_post_created(self, post: Post) -> None:
        self.created.append(post.id)

    def on_post_deleted(self, post: Post) -> None:
        self.deleted.append(post.id)


@pytest.fixture
def store():
    return InMemoryStreamStore()


def consume(store, *batches: list[dict], home=None) -> None:
    consumer = StreamConsumer(store, home)
    for batch in batches:
        consumer.handle(batch)


# Per post (a stream shard keeps each item's records in order):
SENT = history(PENDING, SENDING, REPLAYED, n=1)
DELETED_UNSENT = history(PENDING, DELETED, n=2, author="bob")
DEAD = history(PENDING, SENDING, FAILED, n=3)
WAITING = history(PENDING, n=4, author="bob")
DELETED_AFTER_REPLAY = history(PENDING, SENDING, REPLAYED, DELETE_PENDING, n=5)
EVERY_POST = [SENT, DELETED_UNSENT, DEAD, WAITING, DELETED_AFTER_REPLAY]


def outcome(store: InMemoryStreamStore) -> tuple:
    users = {
        name: (user.version, user.posts_count, user.last_post_id, user.last_deleted_id)
        for name, user in store.users.items()
    }
    return store.status(), store.public.version, users, {shard: sorted(users) for shard, users in store.dirty.items()}


def test_each_change_moves_the_counts_markers_and_dirty_feeds_it_stands_for(store):
    consume(store, [r for records in EVERY_POST for r in records])

    status = store.status()
    assert (status.pending, status.deletes, status.dead_letters) == (1, 1, 1)
    assert status.oldest_pending_id == post(1).id and status.oldest_stale, "post 1 left: the next is looked up"
    # Five posts appeared and two were deleted: seven feed changes.
    assert store.public.version == 7
    alice, bob = store.users["alice"], store.users["bob"]
    assert (alice.version, alice.posts_count, alice.last_deleted_id) == (4, 2, post(5).id)
    assert (bob.version, bob.posts_count, bob.last_post_id, bob.last_deleted_id) == (3, 1, post(4).id, post(2).id)
    assert sorted(user for users in store.dirty.values() for user in users) == ["alice", "bob"]


def test_the_same_batches_delivered_twice_end_the_same(store):
    batches = [[r for records in EVERY_POST for r in records][start : start + 3] for start in range(0, 16, 3)]
    once = InMemoryStreamStore()
    consume(once, *batches)

    consume(store, *batches, *batches)

    assert outcome(store) == outcome(once)


def test_a_longer_batch_from_the_same_record_applies_only_what_is_new(store):
    records = [r for records in EVERY_POST for r in records]
    once = InMemoryStreamStore()
    consume(once, records)

    # Lambda retries a failed batch from its first record, with more behind it.
    consume(store, records[:4], records[:9], records)

    assert outcome(store) == outcome(once)


def interleave(items: list[list[dict]], rng: random.Random) -> list[dict]:
    """Each item's records in its order (one shard holds an item's records),
    the items' records interleaved at random, as shards read in any order."""
    queues = [list(records) for records in items]
    interleaved = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        interleaved.append(queue.pop(0))
    return interleaved


@pytest.mark.parametrize("seed", range(5))
def test_shards_read_in_any_order_end_the_same(store, seed):
    once = InMemoryStreamStore()
    consume(once, [r for records in EVERY_POST for r in records])

    # Each post's records stay in order (one shard holds an item's records);
    # the shards interleave at random, in batches of random sizes.
    rng = random.Random(seed)
    interleaved = interleave(EVERY_POST, rng)
    cuts = sorted(rng.sample(range(1, len(interleaved)), 4))
    batches = [interleaved[a:b] for a, b in itertools.pairwise([0, *cuts, len(interleaved)])]
    consume(store, *batches, *rng.sample(batches, len(batches)))

    status, public, users, dirty = outcome(store)
    assert (status.pending, status.deletes, status.dead_letters, public) == (1, 1, 1, 7)
    assert {name: marker[:2] for name, marker in users.items()} == {name: m[:2] for name, m in outcome(once)[2].items()}
    assert dirty == outcome(once)[3]


def test_home_fan_out_hears_of_every_post_that_appears_or_disappears(store):
    home = Fanout()
    records = [r for records in EVERY_POST for r in records]
    consume(store, records, records, home=home)

    assert set(home.created) == {post(n).id for n in range(1, 6)}
    assert set(home.deleted) == {post(2).id, post(5).id}


def test_replay_transitions_change_no_feed(store):
    consume(store, SENT)
    assert (store.public.version, store.users["alice"].version) == (1, 1)


def test_items_that_are_not_posts_are_skipped():
    counter = {"eventID": "e", "dynamodb": {"Keys": {"PK": {"S": "STATUS#1"}, "SK": {"S": "COUNTS"}}, "NewImage": {}}}
    assert decode([counter]) == []


def test_a_run_fits_one_transaction():
    many = [record(None, post(n % 100, author=f"user{n}")) for n in range(250)]
    runs = chunks(decode(many))
    assert [len(run) for run in runs] == [MAX_TOUCHED_PER_CHUNK, MAX_TOUCHED_PER_CHUNK, 250 - 2 * MAX_TOUCHED_PER_CHUNK]
    assert chunks(decode(many[:150]))[0] == runs[0], "the same first records cut the same way"
