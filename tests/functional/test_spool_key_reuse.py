"""An Idempotency-Key reused, after the outage, for a different post than
the one spooled under it: the fold must still store the spooled post (it
was accepted with 202), and the key stays with the newer post."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from tests.functional.test_spool import run_maintenance, spooled_keys


@pytest.fixture
def alice(api):
    token = api.new_user("alice")
    assert api.post("/posts", {"text": "before the outage"}, token=token).status == 201
    return token


def test_a_spooled_post_whose_key_was_reused_for_another_post_is_folded_in(api, alice, outage):
    # Given a post spooled under key K during the outage,
    key = {"Idempotency-Key": "reused-key"}
    outage.throttled(wiring.dynamodb(), "TransactWriteItems")
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
