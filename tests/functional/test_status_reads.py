"""/status costs two reads whatever WRITE_SHARDS is: the stream's status
items (with the mirror's state) in one BatchGetItem, and the health item."""

from __future__ import annotations

import pytest

from chalicelib import wiring


@pytest.mark.parametrize("shards", ["4", "512"])
def test_status_reads_twice_whatever_the_write_shards(monkeypatch, api, shards):
    monkeypatch.setenv("WRITE_SHARDS", shards)
    wiring.reset()
    alice = api.new_user("alice")
    posts = [api.post("/posts", {"text": f"post {n}"}, token=alice).body for n in range(3)]
    assert api.get("/status").body["backlog"] == 3  # the stream has applied every post
    calls: list[str] = []
    wiring.dynamodb().meta.events.register("provide-client-params", lambda model, **_: calls.append(model.name))

    status = api.get("/status").body

    assert sorted(calls) == ["BatchGetItem", "GetItem"]
    assert (status["backlog"], status["oldest_pending_at"]) == (3, posts[0]["created_at"])


def test_once_the_oldest_pending_post_leaves_the_next_run_names_the_next_one(api):
    alice = api.new_user("alice")
    first, second = (api.post("/posts", {"text": t}, token=alice).body for t in ("first", "second"))
    assert api.delete(f"/posts/{first['id']}", token=alice).status == 204
    assert api.get("/status").body["backlog"] == 1

    wiring.maintenance().run()

    assert api.get("/status").body["oldest_pending_at"] == second["created_at"]
    assert api.delete(f"/posts/{second['id']}", token=alice).status == 204
    assert api.get("/status").body["oldest_pending_at"] is None, "an empty backlog has none"
