"""One contract, two implementations: the primary's health item on DynamoDB
(moto) and the in-memory fake the recovery unit tests use."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.recovery.health import DOWN, UNKNOWN, UP, HealthState, observe
from devtools.fakes.recovery import InMemoryHealthStore

NOW = "2026-11-23T00:00:00.000Z"


@pytest.fixture(params=["dynamodb", "memory"])
def health(request):
    if request.param == "memory":
        return InMemoryHealthStore()
    request.getfixturevalue("moto")
    return wiring.health_store()


def test_nothing_saved_reads_as_unknown_at_version_zero(health):
    assert health.load() == HealthState(state=UNKNOWN, version=0)


def test_a_save_over_the_version_read_is_kept_and_bumps_the_version(health):
    first = observe(health.load(), True, NOW, up_after=1, down_after=1)
    assert health.save(first, expected_version=0)

    stored = health.load()
    assert (stored.state, stored.since, stored.successes, stored.version) == (UP, NOW, 1, 1)
    assert stored.history == [{"state": UP, "at": NOW, "reason": "1 consecutive successful checks"}]


def test_a_save_over_a_stale_version_is_refused_and_the_stored_view_stands(health):
    read = health.load()
    assert health.save(observe(read, True, NOW, 1, 1), read.version)

    # A second run that read the same version before the first one saved:
    assert not health.save(observe(read, False, NOW, 1, 1), read.version)
    assert not health.save(observe(read, False, NOW, 1, 1), expected_version=7)
    assert health.load().state == UP

    again = health.load()
    assert health.save(observe(again, False, NOW, 1, 1), again.version)
    assert (health.load().state, health.load().version) == (DOWN, 2)


def test_the_last_replay_report_is_kept_beside_the_state(health):
    read = health.load()
    health.save(observe(read, True, NOW, 1, 1), read.version)

    health.record_replay({"sent": 3, "stopped_because": "drained"})

    stored = health.load()
    assert stored.last_replay == {"sent": 3, "stopped_because": "drained"}
    assert (stored.state, stored.version) == (UP, 1), "recording a replay leaves the state and its version alone"
