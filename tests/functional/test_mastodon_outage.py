"""POST /api/v1/statuses while DynamoDB is down: the status goes to the
spool and is answered 200 from the post alone, so the client does not post
it again."""

from __future__ import annotations

import urllib.parse

import pytest

from chalicelib import wiring
from tests.functional.test_spool import run_maintenance, spooled_keys

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post_status(api, token, text, headers=None):
    raw = urllib.parse.urlencode({"status": text})
    return api.call("POST", "/api/v1/statuses", token=token, headers={**FORM, **(headers or {})}, raw=raw)


@pytest.fixture
def alice(api):
    return api.new_user("alice")


@pytest.fixture
def normal_status(api, alice):
    """A status made while DynamoDB answers (which also verifies the token,
    as a client would before the outage): the shape to compare with."""
    reply = post_status(api, alice, "before the outage")
    assert reply.status == 200, reply.body
    return reply.body


def test_a_status_spooled_during_an_outage_is_answered_200_from_the_post(api, alice, normal_status, outage):
    outage.unreachable(wiring.dynamodb())

    reply = post_status(api, alice, "during the <outage>")

    assert reply.status == 200, reply.body
    status = reply.body
    assert set(status) == set(normal_status)
    assert set(status["account"]) == set(normal_status["account"])
    assert status["content"] == "<p>during the &lt;outage&gt;</p>"
    assert status["account"]["id"] == status["account"]["acct"] == "alice"
    assert status["created_at"] > normal_status["created_at"]
    assert len(spooled_keys()) == 1

    # Once folded in, the same id answers with the same status.
    outage.end()
    run_maintenance(api)
    stored = api.get(f"/api/v1/statuses/{status['id']}")
    assert stored.status == 200
    assert (stored.body["id"], stored.body["content"]) == (status["id"], status["content"])
    assert stored.body["account"]["statuses_count"] == 2


def test_a_keyed_retry_during_the_outage_gets_the_same_status(api, alice, normal_status, outage):
    outage.unreachable(wiring.dynamodb())
    headers = {"Idempotency-Key": "outage-status"}

    first = post_status(api, alice, "once", headers)
    again = post_status(api, alice, "once", headers)

    assert (first.status, again.status) == (200, 200)
    assert first.body["id"] == again.body["id"]
    assert len(spooled_keys()) == 1


def test_a_status_stored_in_dynamodb_is_answered_200_when_the_account_cannot_be_read(api, alice, normal_status, outage):
    # Given DynamoDB takes the write but cannot be read right after,
    outage.unreachable(wiring.dynamodb(), "GetItem", "BatchGetItem", "Query")

    reply = post_status(api, alice, "written, not read")

    # then the stored status is answered, not a 503 inviting a second post.
    assert reply.status == 200, reply.body
    assert set(reply.body["account"]) == set(normal_status["account"])
    assert spooled_keys() == []
    outage.end()
    assert [s["content"] for s in api.get("/api/v1/accounts/alice/statuses").body] == [
        "<p>written, not read</p>",
        "<p>before the outage</p>",
    ]
