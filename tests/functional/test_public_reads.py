"""A public page costs one Query per public lane and one BatchGetItem of
its posts, and a status by its Mastodon id one Query of its shard (two with
the mirror), whatever WRITE_SHARDS is. Counted on the botocore client."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from tests.functional.test_mastodon_api import post_status


def counted(api, path: str) -> tuple[object, list[str]]:
    api.get("/status")  # the stream has applied every write: its own requests are done
    calls: list[str] = []
    handler = lambda model, **_: calls.append(model.name)  # noqa: E731
    wiring.dynamodb().meta.events.register("provide-client-params.dynamodb", handler)
    try:
        answer = api.get(path)
    finally:
        wiring.dynamodb().meta.events.unregister("provide-client-params.dynamodb", handler)
    assert answer.status == 200, answer.body
    return answer.body, calls


@pytest.fixture(params=["4", "512"])
def posts(request, monkeypatch, api):
    monkeypatch.setenv("WRITE_SHARDS", request.param)
    monkeypatch.setenv("MIRROR_ENABLED", "false")
    wiring.reset()
    authors = [api.new_user(name) for name in ("alice", "bob", "carol")]
    made = [api.post("/posts", {"text": f"post {n}"}, token=authors[n % 3]).body for n in range(25)]
    return made


def test_a_public_page_is_one_query_and_one_batch_read_at_any_write_shards(api, posts):
    page, calls = counted(api, "/timeline/public?limit=20")
    assert [post["id"] for post in page["posts"]] == [post["id"] for post in reversed(posts)][:20]
    assert calls == ["Query", "BatchGetItem"]

    statuses, calls = counted(api, "/api/v1/timelines/public?limit=20")
    assert len(statuses) == 20
    # The page's posts; then its authors and their follow counts, to render them.
    assert calls[:2] == ["Query", "BatchGetItem"]
    assert calls[2:] == ["BatchGetItem", "BatchGetItem"]


def test_a_status_by_its_mastodon_id_is_one_query_at_any_write_shards(api, posts):
    wanted = api.get("/api/v1/timelines/public?limit=40").body[-1]  # the oldest post
    status, calls = counted(api, f"/api/v1/statuses/{wanted['id']}")
    assert status == wanted
    # The status, its author (read once: for suspension and the account), the follow counts.
    assert calls == ["Query", "GetItem", "BatchGetItem"]


def test_with_the_mirror_the_lookup_reads_the_mirrored_posts_of_the_same_shard(api, monkeypatch):
    monkeypatch.setenv("WRITE_SHARDS", "512")
    monkeypatch.setenv("MIRROR_ENABLED", "true")
    wiring.reset()
    alice = api.new_user("alice")
    made = post_status(api, alice, "hello").body
    status, calls = counted(api, f"/api/v1/statuses/{made['id']}")
    assert status["id"] == made["id"]
    assert calls.count("Query") == 2
