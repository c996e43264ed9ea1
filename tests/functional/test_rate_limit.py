"""The per-user limit on POST /posts: 429 with Retry-After, nothing stored."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from chalicelib import posting, wiring


@pytest.fixture
def limited_api(monkeypatch, api):
    monkeypatch.setenv("POSTS_PER_MINUTE", "3")
    # All posts of the test fall in one rate window, whatever the clock says:
    # 20 s into a minute, so Retry-After is 40.
    start_of_minute = int(time.time()) // 60 * 60
    monkeypatch.setattr(posting, "time", SimpleNamespace(time=lambda: start_of_minute + 20.5))
    wiring.reset()
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
