"""Live feeds through the API: what a feed reader sees, and conditional GET
answered from the marker without reading a post."""

from __future__ import annotations

import dataclasses
import html
import time

import feedparser
import pytest

from chalicelib import syndication, wiring
from chalicelib.feeds import entry_title
from chalicelib.syndication import Feeds

USER_PATHS = ["/users/alice/feed.rss", "/users/alice/feed.atom"]
PUBLIC_PATHS = ["/timeline/public/feed.rss", "/timeline/public/feed.atom"]
TEXTS = ["first <b>bold</b> & done", "line one\nline two \u05e9\u05dc\u05d5\u05dd \U0001f6df", "third"]


def settled_feeds(**setting_changes) -> Feeds:
    """The live feeds, an hour later: every change is past the settle time."""
    settings = dataclasses.replace(wiring.settings(), **setting_changes)
    later = time.time() + 3600
    return Feeds(wiring.post_store(), wiring.feed_store(), settings, clock=lambda: later)


@pytest.fixture
def use_feeds(api):
    """Make the routes use the given Feeds; restored before moto stops (the
    `monkeypatch` of the credentials would only undo it after)."""
    built = wiring.feeds

    def use(feeds: Feeds) -> None:
        wiring.feeds = lambda: feeds

    yield use
    wiring.feeds = built


@pytest.fixture
def settled(use_feeds):
    use_feeds(settled_feeds())


@pytest.fixture
def tokens(api):
    return {name: api.new_user(name) for name in ("alice", "bob")}


@pytest.fixture
def queries():
    """Every Query the app's DynamoDB client sends, by index name."""
    sent: list[str] = []

    def record(params, **_):
        sent.append(params.get("IndexName", "table"))

    events = wiring.dynamodb().meta.events
    events.register("before-call.dynamodb.Query", record)
    yield sent
    events.unregister("before-call.dynamodb.Query", record)


def forbid_rendering(monkeypatch) -> None:
    """From now on, fail the test if anything renders a feed."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("a feed was rendered")

    monkeypatch.setattr(syndication, "render_feed", refuse)


def fetch(api, path, headers=None):
    """GET a feed as raw text (the Api helper parses JSON, feeds are XML)."""
    response = api._client.http.request("GET", path, headers=headers or {})
    return response.status_code, dict(response.headers), response.body.decode("utf-8")


def write(api, tokens, texts=TEXTS):
    """Alice and bob alternate; returns the posts oldest first."""
    names = list(tokens)
    posts = []
    for i, text in enumerate(texts):
        reply = api.post("/posts", {"text": text}, token=tokens[names[i % len(names)]])
        assert reply.status == 201
        posts.append(reply.body)
    return posts


def entry_post_id(entry) -> str:
    return entry.id.rsplit(":", 1)[1]


@pytest.mark.parametrize("path", USER_PATHS + PUBLIC_PATHS)
def test_every_live_feed_is_a_valid_feed_of_the_latest_posts_newest_first(api, tokens, settled, path):
    posts = write(api, tokens)
    status, _, body = fetch(api, path)

    parsed = feedparser.parse(body)
    assert status == 200
    assert parsed.bozo == 0, parsed.bozo_exception
    expected = [post for post in reversed(posts) if "/public/" in path or post["author"] == "alice"]
    assert [entry_post_id(entry) for entry in parsed.entries] == [post["id"] for post in expected]
    for entry, post in zip(parsed.entries, expected, strict=True):
        assert entry.author == post["author"]
        assert entry.link.endswith(f"/posts/{post['id']}")
        shown = entry.content[0].value if "content" in entry else entry.description
        assert html.unescape(shown.replace("<br />", "\n")) == post["text"]
        assert html.unescape(entry.title) == entry_title(post["text"])
        published = time.strftime("%Y-%m-%dT%H:%M:%S", entry.published_parsed)
        assert published == post["created_at"][:19]


@pytest.mark.parametrize("path", USER_PATHS + PUBLIC_PATHS)
def test_feeds_have_their_content_type_validators_and_a_short_cache_life(api, tokens, settled, path):
    write(api, tokens, ["hello"])
    status, headers, _ = fetch(api, path)
    assert status == 200
    kind = path.rsplit(".", 1)[1]
    assert headers["Content-Type"] == f"application/{kind}+xml; charset=utf-8"
    assert headers["ETag"].startswith('"') and headers["Last-Modified"].endswith("GMT")
    assert headers["Cache-Control"] == "public, max-age=30"


def test_a_feed_shows_at_most_feed_items_posts(api, tokens, use_feeds):
    use_feeds(settled_feeds(feed_items=4))
    posts = write(api, tokens, [f"post {i}" for i in range(7)])
    parsed = feedparser.parse(fetch(api, "/timeline/public/feed.atom")[2])
    assert [entry_post_id(entry) for entry in parsed.entries] == [post["id"] for post in reversed(posts)][:4]


def test_feed_items_defaults_to_fifty(api):
    assert wiring.settings().feed_items == 50


@pytest.mark.parametrize("path", ["/users/nobody/feed.rss", "/users/nobody/feed.atom", "/users/No%20Body/feed.rss"])
def test_an_unknown_user_is_a_json_404(api, settled, path):
    reply = api.get(path)
    assert reply.status == 404
    assert reply.body == {"error": "user_not_found", "message": reply.body["message"]}
    assert reply.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", USER_PATHS + PUBLIC_PATHS)
def test_a_timeline_without_posts_is_an_empty_valid_feed(api, tokens, settled, path):
    status, _, body = fetch(api, path)
    parsed = feedparser.parse(body)
    assert status == 200
    assert parsed.bozo == 0
    assert parsed.entries == []


def test_reading_a_feed_needs_no_token(api, tokens, settled):
    write(api, tokens, ["public"])
    assert fetch(api, "/users/alice/feed.rss", headers={})[0] == 200


@pytest.mark.parametrize("path", USER_PATHS + PUBLIC_PATHS)
@pytest.mark.parametrize("validator", ["If-None-Match", "If-Modified-Since"])
def test_a_current_copy_gets_304_without_a_query_or_a_render(
    api, tokens, settled, queries, monkeypatch, path, validator
):
    # Given a reader that fetched the feed,
    write(api, tokens)
    status, headers, _ = fetch(api, path)
    assert status == 200 and queries
    queries.clear()
    forbid_rendering(monkeypatch)

    # when it asks again with the validator it was given,
    sent = {validator: headers["ETag"] if validator == "If-None-Match" else headers["Last-Modified"]}
    status, again, body = fetch(api, path, headers=sent)

    # then it gets 304, with the same validators, from the marker alone.
    assert status == 304
    assert body == ""
    assert again["ETag"] == headers["ETag"]
    assert again["Last-Modified"] == headers["Last-Modified"]
    assert queries == []


@pytest.mark.parametrize("path", ["/users/alice/feed.atom", "/timeline/public/feed.rss"])
def test_a_new_post_or_a_delete_changes_the_validators(api, tokens, settled, path):
    first = write(api, tokens, ["one"])[0]
    _, before, _ = fetch(api, path)

    write(api, tokens, ["two"])
    _, after_post, _ = fetch(api, path)
    assert after_post["ETag"] != before["ETag"]
    assert fetch(api, path, headers={"If-None-Match": before["ETag"]})[0] == 200

    assert api.delete(f"/posts/{first['id']}", token=tokens["alice"]).status == 204
    status, after_delete, body = fetch(api, path, headers={"If-None-Match": after_post["ETag"]})
    assert status == 200
    assert after_delete["ETag"] not in {before["ETag"], after_post["ETag"]}
    assert first["id"] not in {entry_post_id(entry) for entry in feedparser.parse(body).entries}


def test_a_change_in_the_same_second_is_not_hidden_by_if_modified_since(api, tokens, settled):
    # Last-Modified has whole seconds; the ETag does not, and wins when sent.
    write(api, tokens, ["one"])
    _, before, _ = fetch(api, "/users/alice/feed.rss")
    write(api, tokens, ["two"])
    status, _, _ = fetch(
        api,
        "/users/alice/feed.rss",
        headers={"If-None-Match": before["ETag"], "If-Modified-Since": before["Last-Modified"]},
    )
    assert status == 200


def test_a_replay_upstream_does_not_change_any_feed(api, tokens, settled):
    # Reinsertion upstream changes a post's state, not what a feed shows.
    post = write(api, tokens, ["to be replayed"])[0]
    paths = ["/users/alice/feed.atom", "/timeline/public/feed.atom"]
    before = [fetch(api, path)[1]["ETag"] for path in paths]

    store = wiring.post_store()
    claimed = store.claim_for_sending(store.get_post(post["id"]), "run-1", post["created_at"])
    store.mark_replayed(claimed, "run-1", "upstream-1", post["created_at"])

    assert [fetch(api, path, headers={"If-None-Match": etag})[0] for path, etag in zip(paths, before, strict=True)] == [
        304,
        304,
    ]


def test_a_feed_changed_moments_ago_is_never_answered_304(api, tokens):
    # Given the real clock: the change is younger than the settle time, so the
    # indexes the body is read from may not show it yet.
    write(api, tokens, ["just now"])
    status, early, _ = fetch(api, "/users/alice/feed.rss")
    assert status == 200
    assert early["Cache-Control"] == "no-cache"

    # A reader repeating its validators is sent the document again,
    assert fetch(api, "/users/alice/feed.rss", headers={"If-None-Match": early["ETag"]})[0] == 200
    assert fetch(api, "/users/alice/feed.rss", headers={"If-Modified-Since": early["Last-Modified"]})[0] == 200

    # and once the change has settled, those early validators match nothing.
    wiring.feeds.cache_clear()
    settled = settled_feeds()
    reply = settled.live("alice", syndication.FeedKind.RSS, {"If-None-Match": early["ETag"]})
    assert reply.body is not None
    reply = settled.live("alice", syndication.FeedKind.RSS, {"If-Modified-Since": early["Last-Modified"]})
    assert reply.body is not None
