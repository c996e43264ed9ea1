"""The replay lease, on moto and in memory (one contract, two
implementations): exclusive, re-entrant for its holder, and lost by a
holder that dies once it expires."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.aws.lease import Lease
from devtools.fakes.recovery import InMemoryLease, LeaseTable


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["dynamodb", "memory"])
def lease(request):
    """Makes a lease named "replay" on the given clock: each call is another
    process's handle on the same lease."""
    if request.param == "memory":
        table = LeaseTable()
        return lambda clock: InMemoryLease(table, "replay", clock=clock)
    request.getfixturevalue("moto")
    return lambda clock: Lease(wiring.dynamodb(), wiring.settings().table_name, "replay", clock=clock)


def test_a_held_lease_keeps_others_out_until_it_expires(lease):
    clock = Clock()
    assert lease(clock).acquire("run-a", seconds=60)
    assert not lease(clock).acquire("run-b", seconds=60)
    clock.now += 59
    assert not lease(clock).acquire("run-b", seconds=60)
    clock.now += 2  # run-a died without releasing: its lease has expired
    assert lease(clock).acquire("run-b", seconds=60)
    assert not lease(clock).acquire("run-a", seconds=60)


def test_release_frees_the_lease_but_only_for_its_holder(lease):
    clock = Clock()
    lease(clock).acquire("run-a", seconds=60)
    lease(clock).release("run-b")
    assert not lease(clock).acquire("run-b", seconds=60)
    lease(clock).release("run-a")
    assert lease(clock).acquire("run-b", seconds=60)


def test_the_holder_may_extend_its_own_lease(lease):
    clock = Clock()
    assert lease(clock).acquire("run-a", seconds=60)
    assert lease(clock).acquire("run-a", seconds=600)
