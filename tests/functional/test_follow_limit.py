"""MAX_FOLLOWING caps whom one user follows (7,500 by default, as Mastodon
does): 422 past it, on the Mastodon route and the CSV import, even when
follows race."""

from __future__ import annotations

import itertools
import threading

import pytest

from chalicelib import wiring
from chalicelib.config import Settings
from chalicelib.errors import FollowLimitReached
from chalicelib.mastodon.follows import Follow
from tests.concurrency import run_at_once
from tests.conftest import ADMIN_TOKEN

CAP = 2


@pytest.fixture
def capped_api(monkeypatch, api):
    monkeypatch.setenv("MAX_FOLLOWING", str(CAP))
    wiring.reset()
    return api


def following_count(api, user):
    return api.get(f"/api/v1/accounts/{user}").body["following_count"]


def test_the_default_cap_is_mastodons():
    assert Settings.from_env({}).max_following == 7500


def test_a_follow_past_the_cap_is_refused_with_422(capped_api):
    api = capped_api
    alice = api.new_user("alice")
    for name in ("b1", "b2", "b3"):
        api.new_user(name)
    assert api.post("/api/v1/accounts/b1/follow", token=alice).status == 200
    assert api.post("/api/v1/accounts/b2/follow", token=alice).status == 200

    refused = api.post("/api/v1/accounts/b3/follow", token=alice)

    assert refused.status == 422
    assert refused.body == {"error": f"Validation failed: You cannot follow more than {CAP} people"}
    assert following_count(api, "alice") == CAP
    assert api.get("/api/v1/accounts/b3").body["followers_count"] == 0
    # Following someone already followed changes nothing and is not refused,
    assert api.post("/api/v1/accounts/b1/follow", token=alice).status == 200
    # and an unfollow makes room again.
    api.post("/api/v1/accounts/b1/unfollow", token=alice)
    assert api.post("/api/v1/accounts/b3/follow", token=alice).body["following"] is True
    assert following_count(api, "alice") == CAP


def test_racing_follows_cannot_pass_the_cap(capped_api):
    # Given one user following six accounts at once,
    wiring.accounts().create_user({"username": "carol"})
    targets = [f"t{i}" for i in range(6)]
    for name in targets:
        wiring.accounts().create_user({"username": name})
    follows = wiring.follow_store()
    next_target = itertools.cycle(targets).__next__
    lock = threading.Lock()

    def follow_one() -> bool:
        with lock:
            target = next_target()
        try:
            return follows.follow(Follow("carol", target), "2026-01-01T00:00:00.000Z")
        except FollowLimitReached:
            return False

    results = run_at_once(follow_one, threads=len(targets))

    # then exactly CAP of them went through, edges and count alike.
    assert sum(results) == CAP
    assert len(follows.following("carol")) == CAP
    assert follows.counts(["carol"])["carol"].following == CAP


def csv_import(api, user, names):
    export = "Account address,Show boosts,Notify on new posts,Languages\n" + "".join(
        f"{name},true,false,\n" for name in names
    )
    return api.call(
        "POST", f"/admin/users/{user}/following", token=ADMIN_TOKEN, headers={"Content-Type": "text/csv"}, raw=export
    )


def test_an_import_past_the_cap_is_refused_whole(capped_api):
    api = capped_api
    api.new_user("alice")
    for name in ("b1", "b2", "b3"):
        api.new_user(name)
    assert csv_import(api, "alice", ["b1"]).body["followed"] == 1

    refused = csv_import(api, "alice", ["b1", "b2", "b3"])

    assert refused.status == 422
    assert refused.body["error"] == "follow_limit_reached"
    assert f"more than {CAP}" in refused.body["message"]
    assert following_count(api, "alice") == 1
    # Rows already followed take no room: this import fits.
    fits = csv_import(api, "alice", ["b1", "b2"])
    assert (fits.status, fits.body["followed"], fits.body["already_following"]) == (200, 1, 1)
