"""The native write and read API through Chalice's test client on moto."""

from __future__ import annotations

import re

import pytest

from chalicelib.core import ids

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def alice(api):
    return api.new_user("alice")


@pytest.fixture
def bob(api):
    return api.new_user("bob")


def test_a_post_is_created_with_the_contract_shape(api, alice):
    reply = api.post("/posts", {"text": "The primary is down again"}, token=alice)

    assert reply.status == 201
    post = reply.body
    assert set(post) == {"id", "author", "text", "created_at", "in_reply_to", "state", "upstream_id"}
    assert ids.is_ulid(post["id"])
    assert post["author"] == "alice"
    assert post["text"] == "The primary is down again"
    assert ISO_UTC.match(post["created_at"])
    assert post["in_reply_to"] is None
    assert post["state"] == "pending"
    assert post["upstream_id"] is None
    assert reply.headers["Location"] == f"/posts/{post['id']}"
    assert api.get(f"/posts/{post['id']}").body == post


def test_text_is_stored_with_normalised_line_endings(api, alice):
    reply = api.post("/posts", {"text": "one\r\ntwo\rthree"}, token=alice)
    assert api.get(f"/posts/{reply.body['id']}").body["text"] == "one\ntwo\nthree"


def test_a_reply_names_an_existing_parent(api, alice, bob):
    parent = api.post("/posts", {"text": "parent"}, token=alice).body
    reply = api.post("/posts", {"text": "child", "in_reply_to": parent["id"]}, token=bob)
    assert reply.status == 201
    assert reply.body["in_reply_to"] == parent["id"]


def test_a_reply_to_an_unknown_or_deleted_post_is_refused(api, alice):
    unknown = ids.UlidFactory().new()
    assert api.post("/posts", {"text": "x", "in_reply_to": unknown}, token=alice).body["error"] == "unknown_parent"
    parent = api.post("/posts", {"text": "soon gone"}, token=alice).body
    assert api.delete(f"/posts/{parent['id']}", token=alice).status == 204
    reply = api.post("/posts", {"text": "x", "in_reply_to": parent["id"]}, token=alice)
    assert (reply.status, reply.body["error"]) == (422, "unknown_parent")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "invalid_text"),
        ({"text": ""}, 422, "empty_text"),
        ({"text": " \n\t "}, 422, "empty_text"),
        ({"text": "x" * 501}, 422, "text_too_long"),
        ({"text": "bell\x07"}, 422, "forbidden_character"),
        ({"text": "c1\x85"}, 422, "forbidden_character"),
        ({"text": "del\x7f"}, 422, "forbidden_character"),
        ({"text": "\ufffe"}, 422, "forbidden_character"),
        ({"text": 42}, 422, "invalid_text"),
        ({"text": "hi", "visibility": "public"}, 422, "unknown_field"),
        ({"text": "hi", "in_reply_to": 7}, 422, "unknown_parent"),
        (["text"], 400, "invalid_body"),
        ("just a string", 400, "invalid_body"),
    ],
)
def test_invalid_posts_get_a_json_error_and_store_nothing(api, alice, body, status, code):
    reply = api.post("/posts", body, token=alice)
    assert (reply.status, reply.body["error"]) == (status, code)
    assert reply.body["message"]
    assert api.get("/timeline/public").body["posts"] == []
    assert api.get("/status").body["backlog"] == 0


def test_a_lone_surrogate_escape_in_json_is_refused(api, alice):
    reply = api.post("/posts", raw='{"text": "broken \\ud800 pair"}', token=alice)
    assert (reply.status, reply.body["error"]) == (422, "forbidden_character")


def test_exactly_the_limit_is_accepted(api, alice):
    assert api.post("/posts", {"text": "\U0001f6df" * 500}, token=alice).status == 201


@pytest.mark.parametrize("raw", ["{not json", "", "[1,", b"\xff\xfe{}"])
def test_unparseable_bodies_are_a_bad_request(api, alice, raw):
    reply = api.post("/posts", raw=raw, token=alice)
    assert (reply.status, reply.body["error"]) == (400, "invalid_json")


def test_a_body_over_16_kib_is_too_large(api, alice):
    reply = api.post("/posts", raw='{"text": "' + "x" * (16 * 1024) + '"}', token=alice)
    assert (reply.status, reply.body["error"]) == (413, "body_too_large")


def test_a_non_json_content_type_is_refused_in_our_error_shape(api, alice):
    reply = api.post(
        "/posts", raw="text=hi", token=alice, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert reply.status == 415
    assert reply.body["error"] == "unsupported_media_type"
    assert "Code" not in reply.body


def test_an_unknown_method_is_refused_in_our_error_shape(api, alice):
    reply = api.call("PUT", "/posts", {"text": "x"}, token=alice)
    assert (reply.status, reply.body["error"]) == (405, "method_not_allowed")
    assert reply.headers["Allow"] == "POST"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic abc", "bearer nope", "lb_token-without-scheme"])
def test_writes_without_a_valid_token_are_unauthorized(api, header):
    headers = {"Authorization": header} if header else {}
    reply = api.post("/posts", {"text": "hi"}, headers=headers)
    assert reply.status == 401
    assert reply.body["error"] in {"missing_token", "invalid_token"}
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_reads_of_public_posts_need_no_token(api, alice):
    post = api.post("/posts", {"text": "public"}, token=alice).body
    assert api.get(f"/posts/{post['id']}").status == 200
    assert api.get("/timeline/public").status == 200
    assert api.get("/users/alice/posts").status == 200
    assert api.get("/status").status == 200


@pytest.mark.parametrize("post_id", ["nope", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "%00"])
def test_unknown_posts_are_not_found(api, post_id):
    reply = api.get(f"/posts/{post_id}")
    assert (reply.status, reply.body["error"]) == (404, "post_not_found")


def test_only_the_author_may_delete_a_post(api, alice, bob):
    post = api.post("/posts", {"text": "mine"}, token=alice).body

    assert api.delete(f"/posts/{post['id']}").status == 401
    reply = api.delete(f"/posts/{post['id']}", token=bob)
    assert (reply.status, reply.body["error"]) == (403, "not_author")
    assert api.get(f"/posts/{post['id']}").status == 200


def test_a_deleted_post_leaves_every_timeline_and_the_backlog(api, alice):
    kept = api.post("/posts", {"text": "kept"}, token=alice).body
    gone = api.post("/posts", {"text": "gone"}, token=alice).body
    assert api.get("/status").body["backlog"] == 2

    assert api.delete(f"/posts/{gone['id']}", token=alice).status == 204

    assert api.get(f"/posts/{gone['id']}").status == 404
    assert [p["id"] for p in api.get("/timeline/public").body["posts"]] == [kept["id"]]
    assert [p["id"] for p in api.get("/users/alice/posts").body["posts"]] == [kept["id"]]
    status = api.get("/status").body
    assert status["backlog"] == 1
    assert status["oldest_pending_at"] == kept["created_at"]
    assert api.delete(f"/posts/{gone['id']}", token=alice).status == 404


def test_status_reports_the_backlog_and_its_oldest_post(api, alice, bob):
    assert api.get("/status").body == {
        "mode": "fallback",
        "backlog": 0,
        "upstream_deletes": 0,
        "oldest_pending_at": None,
        "dead_letters": 0,
        "primary": "unknown",
        "since": None,
        "last_check_at": None,
        "last_replay": None,
        "primary_public_url": None,
        "mirror": {
            "cursor_at": None,
            "lag_seconds": None,
            "accounts": 0,
            "posts": 0,
            "malformed": 0,
            "last_error": None,
        },
    }
    first = api.post("/posts", {"text": "first"}, token=alice).body
    api.post("/posts", {"text": "second"}, token=bob)
    status = api.get("/status").body
    assert status["backlog"] == 2
    assert status["oldest_pending_at"] == first["created_at"]


def test_status_names_the_primarys_public_site_for_the_way_back(monkeypatch, api):
    from chalicelib import wiring

    assert api.get("/status").body["primary_public_url"] is None
    monkeypatch.setenv("PRIMARY_PUBLIC_URL", "https://social.example/")
    wiring.reset()
    assert api.get("/status").body["primary_public_url"] == "https://social.example/"
