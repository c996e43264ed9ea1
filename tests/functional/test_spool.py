"""DynamoDB refuses writes: posts go to the S3 spool and are folded in later."""

from __future__ import annotations

import boto3
import pytest

from chalicelib import wiring
from tests.conftest import BUCKET


def spooled_keys() -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="spool/")
    return [obj["Key"] for obj in listing.get("Contents", [])]


def run_maintenance(api):
    return wiring.maintenance().run()


@pytest.fixture
def alice(api):
    token = api.new_user("alice")
    # A first post verifies the token, as a user's client would before an outage.
    assert api.post("/posts", {"text": "before the outage"}, token=token).status == 201
    return token


def test_throttled_writes_are_spooled_and_answered_202(api, alice, outage):
    outage.throttled(wiring.dynamodb(), "PutItem")

    reply = api.post("/posts", {"text": "during the outage"}, token=alice)

    assert reply.status == 202
    assert reply.body["state"] == "pending"
    assert len(spooled_keys()) == 1
    # Not visible until folded in: nothing half-written is shown.
    assert api.get(f"/posts/{reply.body['id']}").status == 404


def test_spooled_posts_are_folded_in_once(api, alice, outage):
    outage.throttled(wiring.dynamodb(), "PutItem")
    spooled = [api.post("/posts", {"text": f"spooled {i}"}, token=alice).body for i in range(3)]
    outage.end()

    first = run_maintenance(api)
    second = run_maintenance(api)

    assert (first.folded, second.folded) == (3, 0)
    assert spooled_keys() == []
    for post in spooled:
        assert api.get(f"/posts/{post['id']}").body == post
    timeline = [p["text"] for p in api.get("/users/alice/posts").body["posts"]]
    assert timeline == ["spooled 2", "spooled 1", "spooled 0", "before the outage"]
    assert api.get("/status").body["backlog"] == 4


def test_a_known_user_can_post_while_dynamodb_is_down_entirely(api, alice, outage):
    outage.unreachable(wiring.dynamodb())

    reply = api.post("/posts", {"text": "still here"}, token=alice)

    assert reply.status == 202
    assert len(spooled_keys()) == 1


def test_an_unknown_token_cannot_post_while_dynamodb_is_down(api, alice, outage):
    outage.unreachable(wiring.dynamodb())
    reply = api.post("/posts", {"text": "who am I"}, token="lb_never-issued")
    assert reply.status == 503
    assert spooled_keys() == []


def test_a_retry_during_the_outage_returns_the_spooled_post(api, alice, outage):
    outage.throttled(wiring.dynamodb(), "PutItem")
    headers = {"Idempotency-Key": "outage-1"}

    first = api.post("/posts", {"text": "keyed"}, token=alice, headers=headers)
    again = api.post("/posts", {"text": "keyed"}, token=alice, headers=headers)
    changed = api.post("/posts", {"text": "other"}, token=alice, headers=headers)

    assert (first.status, again.status) == (202, 202)
    assert again.body["id"] == first.body["id"]
    assert changed.status == 422
    assert len(spooled_keys()) == 1


def test_a_spooled_post_that_also_reached_dynamodb_is_dropped_at_fold(api, alice, outage):
    # Given a keyed post spooled during the outage, and the client's retry
    # after the outage stored in DynamoDB,
    headers = {"Idempotency-Key": "both-ways"}
    outage.throttled(wiring.dynamodb(), "PutItem")
    api.post("/posts", {"text": "twice"}, token=alice, headers=headers)
    outage.end()
    stored = api.post("/posts", {"text": "twice"}, token=alice, headers=headers).body

    report = run_maintenance(api)

    # then the fold keeps the DynamoDB copy only.
    assert (report.folded, report.duplicates_dropped) == (0, 1)
    texts = [p["text"] for p in api.get("/users/alice/posts").body["posts"]]
    assert texts.count("twice") == 1
    assert api.get(f"/posts/{stored['id']}").status == 200


def test_a_spooled_post_whose_key_was_reused_for_another_post_is_folded_in(api, alice, outage):
    # Given a post spooled under key K during the outage,
    key = {"Idempotency-Key": "reused-key"}
    outage.throttled(wiring.dynamodb(), "PutItem")
    spooled = api.post("/posts", {"text": "written during the outage"}, token=alice, headers=key)
    assert spooled.status == 202
    outage.end()
    # and, after the outage, a different post under the same key,
    newer = api.post("/posts", {"text": "a new post, same key"}, token=alice, headers=key)
    assert newer.status == 201

    report = run_maintenance(api)

    # then both posts are kept: the spooled one is not dropped as a duplicate.
    assert (report.folded, report.duplicates_dropped) == (1, 0)
    assert spooled_keys() == []
    assert api.get(f"/posts/{spooled.body['id']}").body == spooled.body
    texts = [p["text"] for p in api.get("/users/alice/posts").body["posts"]]
    assert sorted(texts) == sorted(["before the outage", "written during the outage", "a new post, same key"])
    assert api.get("/status").body["backlog"] == 3
    # The key stays with the newer post; the folded one is replayed under its own id.
    again = api.post("/posts", {"text": "a new post, same key"}, token=alice, headers=key)
    assert (again.status, again.body["id"]) == (201, newer.body["id"])
    folded = wiring.post_store().get_post(spooled.body["id"])
    assert folded.idempotency_key is None and folded.source == "spool"


def test_when_both_stores_fail_the_client_gets_503_and_nothing_is_stored(api, alice, outage):
    outage.unreachable(wiring.dynamodb())
    outage.unreachable(wiring.s3())

    reply = api.post("/posts", {"text": "lost?"}, token=alice)

    assert reply.status == 503
    assert reply.body["error"] == "unavailable"
    assert int(reply.headers["Retry-After"]) > 0
    outage.end()
    assert spooled_keys() == []
    assert [p["text"] for p in api.get("/users/alice/posts").body["posts"]] == ["before the outage"]


def test_reads_during_an_outage_are_503_not_500(api, alice, outage):
    outage.unreachable(wiring.dynamodb())
    for path in ("/timeline/public", "/users/alice/posts", "/status", "/posts/01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        reply = api.get(path)
        assert (reply.status, reply.body["error"]) == (503, "unavailable"), path
        assert reply.headers["Retry-After"]
