"""The per-user limits on writes: POST /posts, and follows, unfollows and
deletes together. 429 with Retry-After, nothing stored."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from chalicelib import wiring
from chalicelib.accounts import rate_limits
from chalicelib.accounts.rate_limits import PostWindows
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.errors import RateLimited
from chalicelib.posts.store import PostStore
from tests.conftest import stream_lagging


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


# -- across containers: the stream's count -------------------------------------------


def cold_container(clock) -> None:
    """The next request lands in another container: nothing this one
    accepted is known there, only what the stream has counted."""
    wiring.reset()
    wiring.override(id_factory=ids.UlidFactory(clock=clock))


def texts(api, user: str) -> list[str]:
    return [p["text"] for p in api.get(f"/users/{user}/posts").body["posts"]]


def test_the_limit_holds_across_containers_once_the_stream_has_counted(limited_api, frozen_minute):
    api = limited_api
    alice = api.new_user("alice")
    for text in ("1", "2"):
        assert api.post("/posts", {"text": text}, token=alice).status == 201
    cold_container(frozen_minute)
    assert api.post("/posts", {"text": "3"}, token=alice).status == 201
    cold_container(frozen_minute)

    refused = api.post("/posts", {"text": "4"}, token=alice)

    assert (refused.status, refused.body["error"], refused.headers["Retry-After"]) == (429, "too_many_posts", "40")
    # (sorted: each container's ids are made at the same frozen instant)
    assert sorted(texts(api, "alice")) == ["1", "2", "3"]


def test_while_the_stream_lags_each_container_holds_the_limit_by_itself(limited_api, frozen_minute):
    api = limited_api
    alice = api.new_user("alice")
    statuses = []
    with stream_lagging():
        for _container in range(2):
            cold_container(frozen_minute)
            statuses += [api.post("/posts", {"text": f"{len(statuses)}"}, token=alice).status for _ in range(4)]
    cold_container(frozen_minute)

    after_the_lag = api.post("/posts", {"text": "late"}, token=alice)

    # The bound with the stream stopped: the limit in each of N containers.
    assert statuses == [201, 201, 201, 429] * 2
    assert after_the_lag.status == 429
    assert len(texts(api, "alice")) == 6


@pytest.fixture
def containers(moto, frozen_minute):
    """Two containers' post stores on one table, each with its own accepted
    posts, posting as alice against a limit of 3."""
    made = ids.UlidFactory(clock=frozen_minute)
    limit = rate_limits.posts_limit(3)
    settings = wiring.settings()

    def container():
        store = PostStore(wiring.dynamodb(), settings.table_name, settings.write_shards, post_windows=PostWindows())

        def post(spooled: bool = False) -> Post:
            post_id = made.new()
            created_at = ids.iso_from_millis(ids.ulid_millis(post_id))
            new = Post(id=post_id, author="alice", text=post_id, created_at=created_at)
            if spooled:
                store.fold_spooled(new, post_id, 0, 0)
            else:
                store.create_post(new, post_id, 0, 0, limit.charge_at("alice", ids.ulid_millis(post_id) / 1000))
            return new

        return SimpleNamespace(store=store, post=post)

    return container(), container()


def stored(store) -> int:
    return len(store.author_posts("alice", None, 50).posts)


def test_within_the_lag_the_limit_is_passed_by_at_most_what_other_containers_accepted(containers):
    a, b = containers
    a.post()
    a.post()  # the stream counts both before the next request
    with stream_lagging():
        b.post()  # B reads A's two: room for one more
        with pytest.raises(RateLimited):
            b.post()
        a.post()  # A has not seen B's post: the limit + 1, B's post within the lag
        with pytest.raises(RateLimited):
            a.post()

    for container in (a, b):
        with pytest.raises(RateLimited):
            container.post()
    assert stored(a.store) == 4


def test_a_post_folded_in_from_the_spool_is_not_limited_again(containers):
    a, b = containers
    for _ in range(3):
        a.post()

    b.post(spooled=True)  # accepted into the spool before the window filled

    with pytest.raises(RateLimited):
        b.post()
    assert stored(a.store) == 4
