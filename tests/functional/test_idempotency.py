"""Idempotency-Key: one key, one post, even when requests race."""

from __future__ import annotations

import time

import boto3
import pytest

from chalicelib import wiring
from chalicelib.posts.items import idempotency_pk
from tests.concurrency import run_at_once
from tests.conftest import TABLE


@pytest.fixture
def alice(api):
    return api.new_user("alice")


def test_a_retried_request_gets_the_same_post_back(api, alice):
    first = api.post("/posts", {"text": "only once"}, token=alice, headers={"Idempotency-Key": "k-1"})
    again = api.post("/posts", {"text": "only once"}, token=alice, headers={"Idempotency-Key": "k-1"})

    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(api.get("/users/alice/posts").body["posts"]) == 1
    assert api.get("/status").body["backlog"] == 1


def test_a_key_reused_for_different_text_is_refused(api, alice):
    api.post("/posts", {"text": "original"}, token=alice, headers={"Idempotency-Key": "k-2"})
    reply = api.post("/posts", {"text": "changed"}, token=alice, headers={"Idempotency-Key": "k-2"})
    assert (reply.status, reply.body["error"]) == (422, "idempotency_key_reused")
    assert [p["text"] for p in api.get("/users/alice/posts").body["posts"]] == ["original"]


def test_keys_are_scoped_per_author(api, alice):
    bob = api.new_user("bob")
    a = api.post("/posts", {"text": "same"}, token=alice, headers={"Idempotency-Key": "shared"}).body
    b = api.post("/posts", {"text": "same"}, token=bob, headers={"Idempotency-Key": "shared"}).body
    assert a["id"] != b["id"]
    assert (a["author"], b["author"]) == ("alice", "bob")


def test_the_key_is_kept_with_the_post_for_the_replay(api, alice):
    post = api.post("/posts", {"text": "k"}, token=alice, headers={"Idempotency-Key": "client-key-9"}).body
    assert wiring.post_store().get_post(post["id"]).idempotency_key == "client-key-9"


def test_a_key_whose_post_was_deleted_is_a_conflict(api, alice):
    post = api.post("/posts", {"text": "x"}, token=alice, headers={"Idempotency-Key": "k-3"}).body
    api.delete(f"/posts/{post['id']}", token=alice)
    reply = api.post("/posts", {"text": "x"}, token=alice, headers={"Idempotency-Key": "k-3"})
    assert (reply.status, reply.body["error"]) == (409, "idempotency_key_used")


def test_an_expired_key_makes_a_new_post(api, alice):
    first = api.post("/posts", {"text": "x"}, token=alice, headers={"Idempotency-Key": "k-4"}).body
    # Given the record's 24 hours are over but TTL has not deleted it yet:
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"PK": {"S": idempotency_pk("alice", "k-4")}, "SK": {"S": "IDEM"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    second = api.post("/posts", {"text": "x"}, token=alice, headers={"Idempotency-Key": "k-4"})
    assert second.status == 201
    assert second.body["id"] != first["id"]


def test_the_idempotency_record_expires_by_ttl_after_a_day(api, alice):
    api.post("/posts", {"text": "x"}, token=alice, headers={"Idempotency-Key": "k-5"})
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"PK": {"S": idempotency_pk("alice", "k-5")}, "SK": {"S": "IDEM"}}
    )["Item"]
    expires_at = int(item["expires_at"]["N"])
    assert 86400 - 60 <= expires_at - time.time() <= 86400 + 5


def test_many_racing_requests_with_one_key_make_one_post(moto):
    # Given one author and 16 threads sending the same keyed request at once,
    wiring.accounts().create_user({"username": "alice"})
    service = wiring.posts()
    results = run_at_once(lambda: service.create("alice", {"text": "race"}, "race-key"), threads=16)

    # then every request got the same post and exactly one post exists.
    assert len({created.post.id for created in results}) == 1
    assert sum(not created.repeated for created in results) == 1
    assert len(wiring.post_store().author_posts("alice", None, 100).posts) == 1
    assert wiring.backlog_store().backlog_size() == 1


def held_key(key: str, text: str, post_id: str) -> None:
    """An idempotency record whose request ended before it wrote its post (a
    crash between the record and the post, its two writes)."""
    from chalicelib.core.models import NewPost

    boto3.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "PK": {"S": idempotency_pk("alice", key)},
            "SK": {"S": "IDEM"},
            "post_id": {"S": post_id},
            "fingerprint": {"S": NewPost(text, None, key).fingerprint},
            "expires_at": {"N": str(int(time.time()) + 3600)},
        },
    )


def test_a_key_whose_post_was_never_written_gets_that_post_on_the_retry(api, alice):
    from chalicelib.core import ids

    held = ids.UlidFactory().new()
    held_key("k-7", "lost on the way", held)

    reply = api.post("/posts", {"text": "lost on the way"}, token=alice, headers={"Idempotency-Key": "k-7"})
    again = api.post("/posts", {"text": "lost on the way"}, token=alice, headers={"Idempotency-Key": "k-7"})

    assert reply.status == again.status == 201
    assert reply.body["id"] == again.body["id"] == held
    assert reply.body["created_at"] == ids.iso_from_millis(ids.ulid_millis(held))
    assert [p["id"] for p in api.get("/users/alice/posts").body["posts"]] == [held]
    assert api.get("/status").body["backlog"] == 1


def test_a_post_refused_by_the_rate_limit_leaves_its_key_free(monkeypatch, api, alice):
    monkeypatch.setenv("POSTS_PER_MINUTE", "1")
    wiring.reset()
    assert api.post("/posts", {"text": "the one"}, token=alice).status == 201

    refused = api.post("/posts", {"text": "one too many"}, token=alice, headers={"Idempotency-Key": "k-8"})

    assert refused.status == 429
    record = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"PK": {"S": idempotency_pk("alice", "k-8")}, "SK": {"S": "IDEM"}}
    )
    assert "Item" not in record
