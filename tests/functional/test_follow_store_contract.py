"""One contract, two implementations: the follow graph, kept by the
DynamoDB `FollowStore` (on moto) and by the in-memory fake."""

from __future__ import annotations

import time

import pytest

from chalicelib import wiring
from chalicelib.accounts.rate_limits import Charge, writes_limit
from chalicelib.errors import FollowLimitReached, RateLimited
from chalicelib.mastodon.follows import Follow, FollowCounts, FollowStore
from devtools.fakes.mastodon import InMemoryFollowStore
from tests.conftest import TABLE

NOW = "2026-11-23T00:00:00.000Z"
MAX_FOLLOWING = 3


@pytest.fixture(params=["dynamodb", "memory"])
def follows(request):
    if request.param == "memory":
        return InMemoryFollowStore(MAX_FOLLOWING)
    request.getfixturevalue("moto")
    return FollowStore(wiring.dynamodb(), TABLE, MAX_FOLLOWING)


def test_a_follow_is_kept_with_its_options_and_seen_from_both_sides(follows):
    follow = Follow("alice", "bob", show_reblogs=False, notify=True, languages=("en", "de"))
    assert follows.follow(follow, NOW) is True

    assert follows.get("alice", "bob") == follow
    assert follows.get("bob", "alice") is None
    assert follows.follows_back("bob", "alice") is True
    assert follows.follows_back("alice", "bob") is False


def test_a_repeated_follow_changes_nothing(follows):
    assert follows.follow(Follow("alice", "bob"), NOW) is True
    assert follows.follow(Follow("alice", "bob", notify=True), NOW) is False
    assert follows.get("alice", "bob") == Follow("alice", "bob")
    assert follows.counts(["alice", "bob"]) == {"alice": FollowCounts(1, 0), "bob": FollowCounts(0, 1)}


def test_an_unfollow_removes_the_follow_once(follows):
    follows.follow(Follow("alice", "bob"), NOW)
    assert follows.unfollow("alice", "bob") is True
    assert follows.unfollow("alice", "bob") is False
    assert follows.get("alice", "bob") is None
    assert follows.counts(["alice", "bob"]) == {"alice": FollowCounts(0, 0), "bob": FollowCounts(0, 0)}


def test_following_is_by_username_all_or_a_page_after_a_name(follows):
    for name in ("dora", "bob", "carl"):
        follows.follow(Follow("alice", name), NOW)
    assert follows.following("alice") == ["bob", "carl", "dora"]
    assert follows.following("alice", limit=2) == ["bob", "carl"]
    assert follows.following("alice", after="bob", limit=5) == ["carl", "dora"]
    assert follows.following("nobody") == []


def test_counts_cover_every_name_asked_for(follows):
    follows.follow(Follow("alice", "bob"), NOW)
    follows.follow(Follow("carl", "bob"), NOW)
    assert follows.counts(["bob", "alice", "nobody"]) == {
        "bob": FollowCounts(following=0, followers=2),
        "alice": FollowCounts(following=1, followers=0),
        "nobody": FollowCounts(),
    }


def test_a_follow_past_the_cap_is_refused_and_changes_nothing(follows):
    for name in ("bob", "carl", "dora"):
        follows.follow(Follow("alice", name), NOW)
    with pytest.raises(FollowLimitReached):
        follows.follow(Follow("alice", "erin"), NOW)
    assert follows.following("alice") == ["bob", "carl", "dora"]
    assert follows.counts(["erin"]) == {"erin": FollowCounts()}
    # A repeat of a follow held is no new follow, so the cap does not refuse it.
    assert follows.follow(Follow("alice", "bob"), NOW) is False


def test_a_charged_write_past_the_users_window_is_refused_and_changes_nothing(follows):
    # Every charge in one minute, whenever the test runs: a window boundary
    # between two writes would let the second pass.
    limit, minute = writes_limit(per_minute=1), int(time.time())
    alice, carl = Charge(limit, "alice", minute), Charge(limit, "carl", minute)
    assert follows.follow(Follow("alice", "bob"), NOW, alice) is True
    # A repeated follow is refused by its own condition first and counts nothing.
    assert follows.follow(Follow("alice", "bob"), NOW, alice) is False
    with pytest.raises(RateLimited):
        follows.unfollow("alice", "bob", alice)
    assert follows.get("alice", "bob") == Follow("alice", "bob")
    # Another user's window is their own.
    assert follows.follow(Follow("carl", "bob"), NOW, carl) is True
