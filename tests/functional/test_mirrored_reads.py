"""Mirrored posts of the primary are read like posts written here: in the
author's, the home and the public timelines (native and Mastodon), by id,
merged by created_at with the outage's posts."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.aws import clients as aws
from chalicelib.mirror import layout
from chalicelib.mirror.changes import AccountChange, FollowChange, PostChange
from chalicelib.upstream.tokens import ensure_key

EARLY, LATE = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"


@pytest.fixture(autouse=True)
def mirroring(monkeypatch):
    # Only a stack that mirrors reads the mirrored posts' partitions.
    monkeypatch.setenv("MIRROR_ENABLED", "true")


@pytest.fixture
def mirror(api):
    ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
    store = wiring.mirror_store()
    store.apply_account(AccountChange("bob", "Bob", EARLY, False, None))
    return store


def mirrored(mirror, upstream_id, author, created_at):
    mirror.apply_posts([PostChange(upstream_id, author, f"from {author}", created_at, None, False)], 7)
    return layout.mirrored_post_id(created_at, upstream_id)


def ids_of(body):
    return [post["id"] for post in body["posts"]]


def test_mirrored_posts_join_every_timeline_in_time_order(api, mirror):
    alice = api.new_user("alice")
    old = mirrored(mirror, "u1", "bob", EARLY)
    older_own = mirrored(mirror, "u0", "alice", "2025-12-31T00:00:00.000Z")
    new = api.post("/posts", {"text": "written in the outage"}, token=alice).body["id"]
    mirror.apply_follow(FollowChange("alice", "bob", True), LATE)

    assert ids_of(api.get("/timeline/public").body) == [new, old, older_own]
    assert ids_of(api.get("/users/bob/posts").body) == [old]
    home = api.get("/api/v1/timelines/home", token=alice).body
    contents = [status["content"] for status in home]
    assert contents == ["<p>written in the outage</p>", "<p>from bob</p>", "<p>from alice</p>"]
    public = api.get("/api/v1/timelines/public").body
    assert len(public) == 3


def test_a_mirrored_post_is_found_by_id_and_answers_to_replies(api, mirror):
    alice = api.new_user("alice")
    post_id = mirrored(mirror, "u1", "bob", EARLY)
    got = api.get(f"/posts/{post_id}").body
    assert (got["state"], got["upstream_id"], got["author"]) == ("mirrored", "u1", "bob")
    statuses = api.get("/api/v1/timelines/public").body
    assert api.get(f"/api/v1/statuses/{statuses[0]['id']}").body["content"] == "<p>from bob</p>"
    reply = api.post("/posts", {"text": "a reply", "in_reply_to": post_id}, token=alice)
    assert reply.status == 201 and reply.body["in_reply_to"] == post_id


def test_a_deleted_mirrored_post_leaves_the_timelines(api, mirror):
    post_id = mirrored(mirror, "u1", "bob", EARLY)
    mirror.apply_posts([PostChange("u1", "bob", "", EARLY, None, True)], 7)
    assert api.get("/timeline/public").body["posts"] == []
    assert api.get(f"/posts/{post_id}").status == 404


def test_mirrored_posts_are_not_backlog(api, mirror):
    mirrored(mirror, "u1", "bob", EARLY)
    assert api.get("/status").body["backlog"] == 0


def test_a_mirrored_account_shows_its_name_on_the_primary(api, mirror):
    mirror.apply_account(AccountChange("carol", "Carol from the primary", EARLY, False, None))
    alice = api.new_user("alice")
    mirrored(mirror, "u1", "carol", EARLY)

    assert api.get("/api/v1/accounts/carol").body["display_name"] == "Carol from the primary"
    statuses = api.get("/api/v1/timelines/public").body
    assert [status["account"]["display_name"] for status in statuses] == ["Carol from the primary"]
    # Lifeboat's own users have no other name than their username.
    assert api.get("/api/v1/accounts/verify_credentials", token=alice).body["display_name"] == "alice"
