"""Which marker shards the replay's retirement of kept tokens visits (issue
14): every one on the first run, then only those the stream noted, those
still holding a marker and one a minute of the rolling sweep, so an idle
drained run queries none in a minute already swept. In-memory fakes, a
fake clock."""

from __future__ import annotations

import pytest

from chalicelib.accounts.kept_tokens import marker_shard_of
from chalicelib.core.clock import iso_at
from chalicelib.errors import StoreUnavailable
from chalicelib.recovery.kept_retirement import KEPT_READER, NotedRetirement
from chalicelib.recovery.replay import StopReason
from chalicelib.stream.active import KEPT, Visits, minute_of
from devtools.fakes.kept_tokens import InMemoryKeptTokens
from devtools.fakes.stream import InMemoryActiveShards
from tests.unit.test_kept_token_retire import SETTLE, recovery
from tests.unit.test_recovery_job import WALL, World

SHARDS = 512


class Wall:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def retirement(active: InMemoryActiveShards, tokens: InMemoryKeptTokens, wall: Wall) -> NotedRetirement:
    return NotedRetirement(tokens, Visits(active, SETTLE, SHARDS), wall_clock=wall)


def test_an_idle_drained_run_queries_no_marker_shard_once_the_first_has_visited_them_all():
    world, active, tokens = World(), InMemoryActiveShards(), InMemoryKeptTokens(SHARDS)
    kept = retirement(active, tokens, Wall(WALL))

    first = recovery(world, kept).run(lambda: 60.0)["replay"]
    assert first["stopped_because"] == StopReason.DRAINED
    assert sorted(tokens.queried) == list(range(SHARDS))

    tokens.queried.clear()
    for _ in range(3):
        assert recovery(world, kept).run(lambda: 60.0)["replay"]["stopped_because"] == StopReason.DRAINED
    assert tokens.queried == []


def test_a_noted_authors_token_is_retired_once_quiet_and_its_shard_carried_until_then():
    active, tokens, wall = InMemoryActiveShards(), InMemoryKeptTokens(SHARDS), Wall(WALL)
    retirement(active, tokens, wall).retire(iso_at(WALL - SETTLE), lambda: True)  # the first visit
    posted_at = WALL + 30
    tokens.keep("alice", "sha-a", iso_at(posted_at))
    shard = marker_shard_of("alice", SHARDS)
    active.note(minute_of(posted_at), 0, {KEPT: {shard}}, expires_at=0)
    not_quiet, quiet = iso_at(posted_at - 1), iso_at(posted_at + 1)

    tokens.queried.clear()
    wall.at = posted_at + 5
    assert retirement(active, tokens, wall).retire(not_quiet, lambda: True) == 0
    wall.at = posted_at + 600  # the note's minute closes: read for the last time
    assert retirement(active, tokens, wall).retire(not_quiet, lambda: True) == 0
    assert tokens.queried.count(shard) == 2 and tokens.kept == {"alice": "sha-a"}
    assert active.cursor(KEPT_READER).carry == {shard}
    assert active.cursor(KEPT_READER).through > minute_of(posted_at)

    wall.at += 60  # only the carry brings the shard back now (the sweep is elsewhere)
    assert retirement(active, tokens, wall).retire(quiet, lambda: True) == 1
    assert tokens.queried.count(shard) == 3 and tokens.kept == {}
    assert active.cursor(KEPT_READER).carry == frozenset()

    wall.at += 60
    retirement(active, tokens, wall).retire(quiet, lambda: True)
    assert tokens.queried.count(shard) == 3


def test_shards_a_run_had_no_time_for_are_carried_to_the_next():
    active, tokens, wall = InMemoryActiveShards(), InMemoryKeptTokens(SHARDS), Wall(WALL)
    budget = iter([True] * 10)
    retirement(active, tokens, wall).retire(iso_at(WALL - SETTLE), lambda: next(budget, False))

    assert tokens.queried == list(range(10))
    assert active.cursor(KEPT_READER).carry == frozenset(range(10, SHARDS))
    wall.at += 60
    retirement(active, tokens, wall).retire(iso_at(wall.at - SETTLE), lambda: True)
    assert tokens.queried == list(range(SHARDS))


def test_a_store_that_cannot_answer_leaves_the_cursor_where_it_was():
    active, tokens, wall = InMemoryActiveShards(), InMemoryKeptTokens(SHARDS), Wall(WALL)

    def unavailable(*_args):
        raise StoreUnavailable("list kept tokens: DynamoDB is away")

    tokens.retire_shards = unavailable
    with pytest.raises(StoreUnavailable):
        retirement(active, tokens, wall).retire(iso_at(WALL - SETTLE), lambda: True)
    assert active.cursor(KEPT_READER).through is None


def test_a_marker_no_note_points_to_is_retired_by_the_rolling_sweep_within_shards_minutes():
    """Its post refused after the token was kept, or its note expired in a long outage."""
    active, tokens, wall = InMemoryActiveShards(), InMemoryKeptTokens(SHARDS), Wall(WALL)
    retirement(active, tokens, wall).retire(iso_at(WALL - SETTLE), lambda: True)
    tokens.keep("alice", "sha-a", iso_at(WALL))
    tokens.queried.clear()

    runs = 0
    while tokens.kept and runs < SHARDS:
        wall.at += 60
        runs += 1
        retirement(active, tokens, wall).retire(iso_at(wall.at - SETTLE), lambda: True)
    assert tokens.kept == {}
    assert len(tokens.queried) == runs, "one shard a minute"
