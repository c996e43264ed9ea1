"""Timelines: newest first, keyset pagination, no skips or repeats."""

from __future__ import annotations

import pytest


@pytest.fixture
def tokens(api):
    return {name: api.new_user(name) for name in ("alice", "bob", "carol")}


def post_many(api, token, count, prefix="post"):
    return [api.post("/posts", {"text": f"{prefix} {i}"}, token=token).body["id"] for i in range(count)]


def read_all(api, path, limit):
    seen, cursor, pages = [], None, 0
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(path + query).body
        seen += [post["id"] for post in body["posts"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


def test_public_timeline_is_newest_first_across_authors(api, tokens):
    made = []
    for name in ("alice", "bob", "carol", "alice"):
        made += post_many(api, tokens[name], 2, prefix=name)

    body = api.get("/timeline/public").body

    assert [post["id"] for post in body["posts"]] == list(reversed(made))
    assert body["next_cursor"] is None


def test_user_timeline_shows_only_that_users_posts(api, tokens):
    mine = post_many(api, tokens["alice"], 3)
    post_many(api, tokens["bob"], 2)
    assert [post["id"] for post in api.get("/users/alice/posts").body["posts"]] == list(reversed(mine))


def test_default_page_is_twenty(api, tokens):
    post_many(api, tokens["alice"], 23)
    body = api.get("/timeline/public").body
    assert len(body["posts"]) == 20
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("path", ["/timeline/public", "/users/alice/posts"])
def test_paging_through_returns_every_post_once(api, tokens, path):
    made = post_many(api, tokens["alice"], 25)
    seen, pages = read_all(api, path, limit=7)
    assert seen == list(reversed(made))
    assert pages == 4


@pytest.mark.parametrize("path", ["/timeline/public", "/users/alice/posts"])
def test_pages_neither_skip_nor_repeat_while_posts_keep_arriving(api, tokens, path):
    # Given 15 posts, when a reader pages through while new posts arrive
    # between its pages, then it sees exactly the 15 it started with.
    before = post_many(api, tokens["alice"], 15, prefix="before")
    seen, cursor = [], None
    while True:
        query = "?limit=4" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(path + query).body
        seen += [post["id"] for post in body["posts"]]
        post_many(api, tokens["alice"], 2, prefix="during")
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(before))
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("query", ["?limit=101", "?limit=0", "?limit=ten", "?cursor=bogus", "?limit=-5"])
def test_bad_paging_parameters_are_a_bad_request(api, query):
    reply = api.get("/timeline/public" + query)
    assert reply.status == 400
    assert reply.body["error"] in {"invalid_limit", "invalid_cursor"}


def test_limit_one_hundred_is_allowed(api, tokens):
    post_many(api, tokens["bob"], 3)
    assert len(api.get("/timeline/public?limit=100").body["posts"]) == 3
