"""Writes retried or refused below us: botocore retrying a write that had
committed (a post's PutItem, a delete's transaction), DynamoDB throttling a
post, and cancelling a delete's or a follow's transaction for a throttled
or conflicting item."""

from __future__ import annotations

import json

import pytest

from chalicelib import wiring
from tests.functional.test_spool import spooled_keys


@pytest.fixture
def alice(api):
    token = api.new_user("alice")
    # A first post verifies the token, as a user's client would before an outage.
    assert api.post("/posts", {"text": "before"}, token=token).status == 201
    return token


def texts(api, user="alice"):
    return [post["text"] for post in api.get(f"/users/{user}/posts").body["posts"]]


@pytest.mark.parametrize("key", [None, "slow-1"])
def test_a_post_whose_committed_write_was_retried_is_created_once(api, alice, outage, key):
    # Given DynamoDB commits each write of the post (its idempotency record,
    # with a key, and the post) but the answers are lost, so botocore sends
    # the same write again,
    outage.answers_lost(wiring.dynamodb(), "PutItem", times=2)
    headers = {"Idempotency-Key": key} if key else {}

    reply = api.post("/posts", {"text": "slow day"}, token=alice, headers=headers)

    # then the retry's failed condition on our own post is a success.
    assert reply.status == 201, reply.body
    assert "Idempotent-Replayed" not in reply.headers
    assert api.get(f"/posts/{reply.body['id']}").body == reply.body
    assert texts(api) == ["slow day", "before"]
    assert api.get("/status").body["backlog"] == 2
    assert spooled_keys() == []


def test_a_post_id_held_by_another_post_is_not_taken_for_ours(moto):
    from chalicelib.core.models import Post
    from chalicelib.errors import PostExists

    store = wiring.post_store()
    stored = Post(id="01ARZ3NDEKTSV4RRFFQ69G5FAV", author="alice", text="first", created_at="2016-07-30T23:54:10.259Z")
    store.create_post(stored, "f", 0, 0)

    with pytest.raises(PostExists) as raised:
        store.create_post(stored.with_changes(text="another"), "g", 0, 0)

    assert raised.value.stored == stored


def test_a_delete_whose_committed_transaction_was_retried_answers_204(api, alice, outage):
    post = api.post("/posts", {"text": "to go"}, token=alice).body
    outage.answers_lost(wiring.dynamodb(), "TransactWriteItems")

    reply = api.delete(f"/posts/{post['id']}", token=alice)

    assert reply.status == 204, reply.body
    assert api.get(f"/posts/{post['id']}").status == 404
    assert texts(api) == ["before"]
    assert api.get("/status").body["backlog"] == 1


def test_every_attempt_of_a_delete_transaction_carries_one_token_made_from_the_post_id(api, alice, outage):
    # Given a transaction conflict on the first attempt, which we retry,
    post = api.post("/posts", {"text": "contended"}, token=alice).body
    api.get("/status")  # the stream has applied the post: its transactions are done
    tokens = []

    def record_token(request, **_):
        tokens.append(json.loads(request.body).get("ClientRequestToken"))

    wiring.dynamodb().meta.events.register_first("before-send.dynamodb.TransactWriteItems", record_token)
    outage.transaction_cancelled(wiring.dynamodb(), "TransactionConflict", times=1)

    reply = api.delete(f"/posts/{post['id']}", token=alice)

    # then both attempts carried the same token, named after the post.
    assert reply.status == 204
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    assert tokens[0].startswith(post["id"] + ".") and len(tokens[0]) <= 36


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_a_throttled_post_is_spooled(api, alice, outage, code):
    outage.throttled(wiring.dynamodb(), "PutItem", code)

    reply = api.post("/posts", {"text": "throttled"}, token=alice)

    assert reply.status == 202, reply.body
    assert len(spooled_keys()) == 1
    outage.end()
    assert texts(api) == ["before"]


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded"])
def test_deletes_and_follows_throttled_inside_their_transaction_get_503(api, alice, outage, reason):
    api.new_user("bob")
    post = api.post("/posts", {"text": "keep"}, token=alice).body
    outage.transaction_cancelled(wiring.dynamodb(), reason)

    deleted = api.delete(f"/posts/{post['id']}", token=alice)
    followed = api.post("/api/v1/accounts/bob/follow", token=alice)

    assert (deleted.status, deleted.body["error"]) == (503, "unavailable")
    assert deleted.headers["Retry-After"]
    assert followed.status == 503 and "error" in followed.body
    outage.end()
    assert texts(api) == ["keep", "before"]
    assert api.get("/api/v1/accounts/alice").body["following_count"] == 0
