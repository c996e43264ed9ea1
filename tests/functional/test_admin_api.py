"""User administration and tokens: random, shown once, stored as hashes."""

from __future__ import annotations

import hashlib

import boto3
import pytest

from chalicelib import wiring
from tests.conftest import ADMIN_TOKEN, TABLE


def all_items() -> list[dict]:
    client = boto3.client("dynamodb")
    return client.scan(TableName=TABLE)["Items"]  # test-only inspection of the whole table


def test_creating_a_user_returns_a_strong_token_once(api):
    reply = api.post("/admin/users", {"username": "alice"}, token=ADMIN_TOKEN)

    assert reply.status == 201
    assert set(reply.body) == {"username", "token"}
    token = reply.body["token"]
    assert reply.body["username"] == "alice"
    # 256 random bits in URL-safe base64 after the prefix: well over 128.
    assert token.startswith("lb_") and len(token) >= 3 + 43
    shown = api.get("/admin/users/alice", token=ADMIN_TOKEN).body
    assert token not in str(shown)
    assert shown["token_active"] is True


def test_only_the_token_hash_is_stored(api):
    token = api.new_user("alice")
    dump = str(all_items())
    assert token not in dump
    assert token.removeprefix("lb_") not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_a_username_that_exists_is_a_conflict(api):
    api.new_user("alice")
    reply = api.post("/admin/users", {"username": "alice"}, token=ADMIN_TOKEN)
    assert (reply.status, reply.body["error"]) == (409, "username_taken")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "Alice"}, 422),
        ({"username": "x" * 31}, 422),
        ({"username": ""}, 422),
        ({}, 422),
        ({"username": 3}, 422),
        ({"username": "ok", "admin": True}, 422),
        (["alice"], 400),
    ],
)
def test_invalid_usernames_are_refused(api, body, status):
    assert api.post("/admin/users", body, token=ADMIN_TOKEN).status == status


def test_a_username_with_a_final_newline_is_refused_and_nothing_is_stored(api):
    # Found while writing docs/openapi.yaml: the user was created, then the
    # Location header with the newline in it made the answer a 500.
    reply = api.post("/admin/users", {"username": "alice\n"}, token=ADMIN_TOKEN)
    assert (reply.status, reply.body["error"]) == (422, "invalid_username")
    assert not any(item["PK"]["S"].startswith("USER#alice") for item in all_items())


@pytest.mark.parametrize("token", [None, "wrong", "lb_not-admin"])
def test_the_admin_api_needs_the_admin_token(api, token):
    assert api.post("/admin/users", {"username": "mallory"}, token=token).status == 401
    assert api.get("/admin/users/mallory", token=token).status == 401


def test_a_user_token_is_not_an_admin_token(api):
    alice = api.new_user("alice")
    assert api.post("/admin/users", {"username": "mallory"}, token=alice).status == 401


def test_unknown_users_are_not_found(api):
    assert api.get("/admin/users/nobody", token=ADMIN_TOKEN).status == 404
    assert api.post("/admin/users/nobody/token", token=ADMIN_TOKEN).status == 404
    assert api.get("/users/nobody/posts").status == 404
    assert api.get("/users/NOT-VALID/posts").status == 404


def test_rotating_a_token_invalidates_the_old_one(api):
    old = api.new_user("alice")
    assert api.post("/posts", {"text": "with the old token"}, token=old).status == 201

    reply = api.post("/admin/users/alice/token", token=ADMIN_TOKEN)

    new = reply.body["token"]
    assert reply.status == 201 and new != old
    assert api.post("/posts", {"text": "old"}, token=old).status == 401
    assert api.post("/posts", {"text": "new"}, token=new).status == 201


def test_revoking_a_token_locks_the_user_out(api):
    token = api.new_user("alice")
    assert api.post("/posts", {"text": "before"}, token=token).status == 201

    assert api.delete("/admin/users/alice/token", token=ADMIN_TOKEN).status == 204

    assert api.post("/posts", {"text": "after"}, token=token).status == 401
    assert api.get("/admin/users/alice", token=ADMIN_TOKEN).body["token_active"] is False
    assert api.get("/users/alice/posts").body["posts"][0]["text"] == "before"


def test_an_operator_sees_where_a_deleted_post_stands(api):
    token = api.new_user("alice")
    post = api.post("/posts", {"text": "soon gone"}, token=token).body
    assert api.delete(f"/posts/{post['id']}", token=token).status == 204

    shown = api.get(f"/admin/posts/{post['id']}", token=ADMIN_TOKEN)

    assert api.get(f"/posts/{post['id']}").status == 404
    assert shown.status == 200
    assert (shown.body["id"], shown.body["state"], shown.body["author"]) == (post["id"], "deleted", "alice")
    assert shown.body["deleted_at"] is not None


def test_the_admin_post_view_needs_the_admin_token_and_a_known_post(api):
    token = api.new_user("alice")
    post = api.post("/posts", {"text": "mine"}, token=token).body

    assert api.get(f"/admin/posts/{post['id']}", token=token).status == 401
    assert api.get(f"/admin/posts/{post['id']}").status == 401
    assert api.get("/admin/posts/01ARZ3NDEKTSV4RRFFQ69G5FAV", token=ADMIN_TOKEN).status == 404
    assert api.get("/admin/posts/not-an-id", token=ADMIN_TOKEN).status == 404


@pytest.mark.parametrize("username", ["a" * 3000, "Alice", "a%2Fb"])
@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("POST", "/token"), ("DELETE", "/token"), ("DELETE", "/upstream-token")]
)
def test_a_name_that_cannot_be_a_user_is_404_before_any_read(api, username, method, suffix):
    # Real DynamoDB refuses a key over 2,048 bytes with a ValidationException
    # (moto does not), so such a name must never reach a read.
    calls: list[str] = []
    events = wiring.dynamodb().meta.events
    record = lambda operation_name, **_: calls.append(operation_name)  # noqa: E731
    events.register("before-call.dynamodb", record)
    try:
        reply = api.call(method, f"/admin/users/{username}{suffix}", token=ADMIN_TOKEN)
    finally:
        events.unregister("before-call.dynamodb", record)

    assert (reply.status, reply.body["error"]) == (404, "user_not_found")
    assert calls == []
