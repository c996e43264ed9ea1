"""The per-user limits on writes: POST /posts, and follows, unfollows and
deletes together. 429 with Retry-After, nothing stored."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from chalicelib import wiring
from chalicelib.accounts import rate_limits
from chalicelib.core import ids


@pytest.fixture
def frozen_minute(monkeypatch):
    """All writes of the test fall in one rate window, whatever the clock
    says: 20 s into a minute, so Retry-After is 40. A post's window is its
    id's minute: the ids are made at that time too."""
    start_of_minute = int(time.time()) // 60 * 60
    clock = lambda: start_of_minute + 20.5  # noqa: E731
    monkeypatch.setattr(rate_limits, "time", SimpleNamespace(time=clock))
    return clock


@pytest.fixture
def limited_api(monkeypatch, api, frozen_minute):
    """Three posts, and three other writes, per user per minute."""
    monkeypatch.setenv("POSTS_PER_MINUTE", "3")
    monkeypatch.setenv("WRITES_PER_MINUTE", "3")
    wiring.reset()
    wiring.override(id_factory=ids.UlidFactory(clock=frozen_minute))
    return api


def test_the_post_over_the_limit_is_refused_with_retry_after(limited_api):
    api = limited_api
    alice, bob = api.new_user("alice"), api.new_user("bob")
    first = api.post("/posts", {"text": "1"}, token=alice, headers={"Idempotency-Key": "one"}).body
    for text in ("2", "3"):
        assert api.post("/posts", {"text": text}, token=alice).status == 201

    refused = api.post("/posts", {"text": "4"}, token=alice)

    assert (refused.status, refused.body["error"]) == (429, "too_many_posts")
    assert refused.headers["Retry-After"] == "40"
    assert [p["text"] for p in api.get("/users/alice/posts").body["posts"]] == ["3", "2", "1"]
    assert api.get("/status").body["backlog"] == 3
    # A retry of an earlier request still gets its post back, and other users are not limited.
    again = api.post("/posts", {"text": "1"}, token=alice, headers={"Idempotency-Key": "one"})
    assert (again.status, again.body["id"]) == (201, first["id"])
    assert api.post("/posts", {"text": "bob's"}, token=bob).status == 201


def test_follows_unfollows_and_deletes_share_one_limit(limited_api):
    api = limited_api
    alice = api.new_user("alice")
    api.new_user("bob")
    posts = [api.post("/posts", {"text": f"post {i}"}, token=alice).body for i in range(2)]
    assert api.post("/api/v1/accounts/bob/follow", token=alice).status == 200
    assert api.post("/api/v1/accounts/bob/unfollow", token=alice).status == 200
    assert api.delete(f"/posts/{posts[0]['id']}", token=alice).status == 204

    refused = [
        api.delete(f"/posts/{posts[1]['id']}", token=alice),
        api.post("/api/v1/accounts/bob/follow", token=alice),
    ]

    native, mastodon = refused
    assert (native.status, native.body["error"], native.headers["Retry-After"]) == (429, "too_many_writes", "40")
    assert "at most 3" in native.body["message"]
    assert (mastodon.status, mastodon.headers["Retry-After"]) == (429, "40")
    assert mastodon.body == {"error": "at most 3 follows, unfollows and deletes per minute"}
    # Nothing refused happened, and posting has its own limit.
    assert [p["text"] for p in api.get("/users/alice/posts").body["posts"]] == ["post 1"]
    assert api.get("/api/v1/accounts/alice").body["following_count"] == 0
    assert api.post("/posts", {"text": "still posting"}, token=alice).status == 201


def test_the_mastodon_delete_and_unfollow_are_limited_per_user(limited_api):
    api = limited_api
    alice, bob = api.new_user("alice"), api.new_user("bob")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    statuses = [
        api.call("POST", "/api/v1/statuses", token=alice, headers=form, raw=f"status=s{i}").body for i in range(3)
    ]
    assert api.post("/api/v1/accounts/bob/follow", token=alice).status == 200
    for status in statuses[:2]:
        assert api.delete(f"/api/v1/statuses/{status['id']}", token=alice).status == 200

    deleted = api.delete(f"/api/v1/statuses/{statuses[2]['id']}", token=alice)
    unfollowed = api.post("/api/v1/accounts/bob/unfollow", token=alice)

    assert (deleted.status, unfollowed.status) == (429, 429)
    assert api.get(f"/api/v1/statuses/{statuses[2]['id']}").status == 200
    assert api.get("/api/v1/accounts/bob").body["followers_count"] == 1
    # Another user's window is their own.
    assert api.post("/api/v1/accounts/alice/follow", token=bob).status == 200
