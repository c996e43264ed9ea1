"""The per-container token cache on a fake clock, over moto: only a successful
read of DynamoDB may make a cached token fresh again, so neither the fresh
nor the stale window outlives a revocation however often the token is used."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.accounts.service import Accounts, TokenCache
from chalicelib.core.clock import utc_now_iso
from chalicelib.errors import StoreUnavailable, Unauthorized

FRESH_SECONDS = 60
STALE_SECONDS = 900
STEP_SECONDS = 30  # a client polling faster than the fresh window


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeMonotonic()


@pytest.fixture
def accounts(moto, clock):
    """One container's accounts, with its own cache on the fake clock."""
    cache = TokenCache(FRESH_SECONDS, STALE_SECONDS, monotonic=clock)
    return Accounts(wiring.user_store(), "", utc_now_iso, cache)


@pytest.fixture
def alice(accounts):
    """Alice's header, verified once by a successful read while DynamoDB is up."""
    _, token = accounts.create_user({"username": "alice"})
    header = f"Bearer {token}"
    assert accounts.authenticate(header) == "alice"
    return header


def another_container() -> Accounts:
    """Where the admin revokes: its cache is not the one under test."""
    return Accounts(wiring.user_store(), "", utc_now_iso, TokenCache(FRESH_SECONDS, STALE_SECONDS))


def test_a_cached_token_stops_working_once_the_stale_window_runs_out_during_an_outage(accounts, alice, clock, outage):
    outage.unreachable(wiring.dynamodb())

    # Used every 30 s through the outage, the token keeps working for the
    # stale window, counted from the last read that reached DynamoDB,
    while clock.now + STEP_SECONDS <= 1000 + STALE_SECONDS:
        clock.now += STEP_SECONDS
        assert accounts.authenticate(alice) == "alice"

    # and no longer: DynamoDB cannot vouch for it, which is a 503, not a 401.
    clock.now += STEP_SECONDS
    with pytest.raises(StoreUnavailable):
        accounts.authenticate(alice)


def test_a_token_revoked_elsewhere_stops_working_within_the_fresh_window_however_often_it_is_used(
    accounts, alice, clock
):
    another_container().revoke_token("alice")

    clock.now += STEP_SECONDS
    assert accounts.authenticate(alice) == "alice"  # still fresh: the documented price
    clock.now += STEP_SECONDS
    assert accounts.authenticate(alice) == "alice"
    clock.now += STEP_SECONDS  # 90 s after the last read: past the fresh window
    with pytest.raises(Unauthorized):
        accounts.authenticate(alice)


def test_a_token_found_revoked_is_not_revived_by_a_later_outage(accounts, alice, clock, outage):
    another_container().revoke_token("alice")
    clock.now += FRESH_SECONDS + 1
    with pytest.raises(Unauthorized):
        accounts.authenticate(alice)

    outage.unreachable(wiring.dynamodb())
    clock.now += 1  # well inside the stale window of the first read
    with pytest.raises(StoreUnavailable):
        accounts.authenticate(alice)


def test_a_successful_read_after_the_outage_starts_the_windows_again(accounts, alice, clock, outage):
    outage.unreachable(wiring.dynamodb())
    clock.now += STALE_SECONDS - 1
    assert accounts.authenticate(alice) == "alice"
    outage.end()
    assert accounts.authenticate(alice) == "alice"  # past the fresh window: read, and stamped

    outage.unreachable(wiring.dynamodb())
    clock.now += STALE_SECONDS - 1
    assert accounts.authenticate(alice) == "alice"
