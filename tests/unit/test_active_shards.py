"""Which shards a reader visits (`stream.active`): every one the first time,
then only the noted and carried ones, each minute's bucket read until it
closes, never a note missed."""

from __future__ import annotations

import dataclasses

from chalicelib.accounts.kept_tokens import marker_shard_of
from chalicelib.core.models import DELETED, PENDING
from chalicelib.posts.items import shard_of
from chalicelib.stream.active import (
    BUCKET_SECONDS,
    KEPT,
    MAX_MINUTES_PER_RUN,
    POSTS,
    Cursor,
    Visits,
    close_seconds,
    minute_of,
)
from chalicelib.stream.consumer import StreamConsumer
from devtools.fakes.stream import InMemoryActiveShards, InMemoryStreamStore
from tests.unit.test_stream_consumer import post, record

SETTLE = 60
SHARDS = 512
T0 = 1_800_000_000.0  # a whole minute


def visits(store: InMemoryActiveShards) -> Visits:
    return Visits(store, SETTLE, SHARDS)


def note(store: InMemoryActiveShards, at: float, *shards: int) -> None:
    store.note(minute_of(at), 0, {POSTS: set(shards)}, expires_at=0)


def test_the_first_visit_is_of_every_shard_then_only_the_noted_ones():
    store = InMemoryActiveShards()
    first = visits(store).plan("archive", POSTS, T0)
    assert first.shards == list(range(SHARDS))
    visits(store).finish(first, [])
    assert visits(store).plan("archive", POSTS, T0 + 60).shards == []
    note(store, T0 + 61, 7, 300)
    assert visits(store).plan("archive", POSTS, T0 + 62).shards == [7, 300]


def test_a_note_is_visited_every_run_until_its_minute_closes_then_never_again():
    store = InMemoryActiveShards()
    visits(store).finish(visits(store).plan("r", POSTS, T0), [])
    note(store, T0 + 30, 5)
    closes = T0 + BUCKET_SECONDS + close_seconds(SETTLE)
    now, seen = T0 + 30, []
    while now < closes + 3 * BUCKET_SECONDS:
        visit = visits(store).plan("r", POSTS, now)
        seen.append((now, visit.shards))
        visits(store).finish(visit, [])
        now += BUCKET_SECONDS
    last_read = next(index for index, (at, _) in enumerate(seen) if at >= closes)
    assert all(shards == [5] for _, shards in seen[: last_read + 1]), "read every run, the first closed one too"
    assert all(shards == [] for _, shards in seen[last_read + 1 :])


def test_a_shard_left_unfinished_is_carried_past_its_closed_minute():
    store = InMemoryActiveShards()
    visits(store).finish(visits(store).plan("r", POSTS, T0), [])
    note(store, T0 + 1, 9)
    late = T0 + 10 * BUCKET_SECONDS
    visit = visits(store).plan("r", POSTS, late)
    assert visit.shards == [9]
    visits(store).finish(visit, [9])
    assert visits(store).plan("r", POSTS, late + 600).shards == [9]


def test_a_long_stop_is_caught_up_a_bounded_number_of_minutes_a_run_without_missing_a_note():
    store = InMemoryActiveShards()
    visits(store).finish(visits(store).plan("r", POSTS, T0), [])
    for minute in range(40):
        note(store, T0 + minute * BUCKET_SECONDS, minute)
    now, seen = T0 + 3600, set()
    for _ in range(6):
        visit = visits(store).plan("r", POSTS, now)
        seen |= set(visit.shards)
        visits(store).finish(visit, [])
        now += 1
    assert seen == set(range(40))
    assert store.cursor("r").through >= minute_of(T0) + 40
    assert MAX_MINUTES_PER_RUN <= 12, "one BatchGetItem of minutes x splits keys"


def test_without_a_store_every_shard_is_visited_every_time():
    plain = Visits(None, SETTLE, 8)
    assert plain.plan("r", POSTS, T0).shards == list(range(8))
    plain.finish(plain.plan("r", POSTS, T0), [])
    assert plain.plan("r", POSTS, T0 + 60).shards == list(range(8))


def test_a_cursor_is_written_only_when_it_moves():
    store = InMemoryActiveShards()
    store.save_cursor("r", Cursor(minute_of(T0) - 1))
    writes = []
    store.save_cursor = lambda reader, cursor: writes.append(cursor)
    visit = visits(store).plan("r", POSTS, T0 + 1)
    visits(store).finish(visit, [])
    assert writes == []


def test_the_stream_notes_the_shards_of_posts_that_appeared_the_same_whatever_the_redelivery():
    """And the kept-token marker shards of the authors of posts that
    appeared or disappeared, in the same note."""
    store = InMemoryActiveShards()
    consumer = StreamConsumer(
        InMemoryStreamStore(), clock=lambda: T0, active_shards=store, write_shards=SHARDS, notes_kept_tokens=True
    )
    made = [post(n, state=PENDING) for n in range(5)]
    deleted = post(9, author="zed", state=PENDING)
    records = [record(None, p) for p in made] + [record(deleted, dataclasses.replace(deleted, state=DELETED))]
    noted = []
    store_note = store.note
    store.note = lambda *args, **kwargs: (noted.append(args), store_note(*args, **kwargs))
    consumer.handle(records)
    notes = store.buckets([minute_of(T0)])
    consumer.handle(list(reversed(records)))
    assert store.buckets([minute_of(T0)]) == notes
    assert notes == {
        POSTS: {shard_of(p.id, SHARDS) for p in made},
        KEPT: {marker_shard_of("alice", SHARDS), marker_shard_of("zed", SHARDS)},
    }
    assert len(noted) == 2  # one note a batch


def test_a_rolling_sweep_adds_one_shard_per_minute_the_cursor_passes_so_every_shard_in_time():
    store = InMemoryActiveShards()
    visits(store).finish(visits(store).plan("r", KEPT, T0, rolling=True), [])
    assert visits(store).plan("r", KEPT, T0 + 1, rolling=True).shards == []  # the cursor does not move

    swept: list[int] = []
    now = T0
    for _ in range(SHARDS // 4):  # a run every 4 minutes
        now += 4 * BUCKET_SECONDS
        visit = visits(store).plan("r", KEPT, now, rolling=True)
        assert len(visit.shards) == 4
        swept += visit.shards
        visits(store).finish(visit, [])
    assert sorted(swept) == list(range(SHARDS))
    assert visits(store).plan("r", KEPT, now + 4 * BUCKET_SECONDS).shards == []  # not rolling: the noted ones


def test_without_a_mastodon_primary_no_kept_token_shard_is_noted():
    store = InMemoryActiveShards()
    consumer = StreamConsumer(InMemoryStreamStore(), clock=lambda: T0, active_shards=store, write_shards=SHARDS)
    made = post(1, state=PENDING)
    consumer.handle([record(None, made)])
    assert store.buckets([minute_of(T0)]) == {POSTS: {shard_of(made.id, SHARDS)}}
