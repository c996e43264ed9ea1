"""Live feeds through the API: what a feed reader sees, and conditional GET
answered from the marker without reading a post."""

from __future__ import annotations

import dataclasses
import html
import time

import feedparser
import pytest

from chalicelib import wiring
from chalicelib.aws import dynamo
from chalicelib.aws.schema import BY_AUTHOR_INDEX, PUBLIC_INDEX, index_keys
from chalicelib.feeds import live as syndication
from chalicelib.feeds.live import Feeds
from chalicelib.feeds.render import Lane, entry_title
from chalicelib.posts import public_pages
from chalicelib.posts.items import shard_of
from tests.conftest import TABLE, below_the_stream

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
    """Make the routes use the given Feeds, until the moto fixture's
    `wiring.reset()` drops the override with everything else built."""

    def use(feeds: Feeds) -> None:
        wiring.override(feeds=feeds)

    return use


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

    markers = [wiring.feed_store().marker(syndication.timeline_of(name)) for name in ("alice", None)]

    store = wiring.backlog_store()
    claimed = store.claim_for_sending(store.get_post(post["id"]), "run-1", post["created_at"])
    store.mark_replayed(claimed, "run-1", "upstream-1", post["created_at"])

    assert [wiring.feed_store().marker(syndication.timeline_of(name)) for name in ("alice", None)] == markers

    assert [fetch(api, path, headers={"If-None-Match": etag})[0] for path, etag in zip(paths, before, strict=True)] == [
        304,
        304,
    ]


def test_the_markers_name_each_lanes_last_added_and_last_deleted_post(api, tokens):
    first, third = (api.post("/posts", {"text": t}, token=tokens["alice"]).body["id"] for t in ("1", "3"))
    second = api.post("/posts", {"text": "2"}, token=tokens["bob"]).body["id"]
    assert api.delete(f"/posts/{first}", token=tokens["alice"]).status == 204

    markers = wiring.feed_store()
    users = markers.user_markers(["alice", "bob"])
    assert {name: (marker.version, marker.lanes) for name, marker in users.items()} == {
        "alice": (3, (Lane(third, first),)),
        "bob": (1, (Lane(second),)),
    }
    # The public lanes are the stream's status items: each names the newest
    # post added and deleted by the last run of records applied to it.
    public = markers.public_marker()
    assert public.version == 4
    assert {lane.last_deleted for lane in public.lanes} - {None} == {first}
    assert {lane.last_added for lane in public.lanes} - {None} <= {first, second, third}


# -- before the settle time: 304 as soon as the body shows the marker's changes --
# These use the real clock and the default ARCHIVE_SETTLE_SECONDS (60 s): every
# change below is younger than that.


def shown_ids(body: str) -> list[str]:
    return [entry_post_id(entry) for entry in feedparser.parse(body).entries]


def raw_item(post_id: str) -> dict:
    key = dynamo.key(f"POST#{post_id}", "POST")
    return wiring.dynamodb().get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]


def put_raw(item: dict) -> None:
    # As an index lagging behind the table: the stream saw the real change.
    with below_the_stream():
        wiring.dynamodb().put_item(TableName=TABLE, Item=item)


def public_chunks_of(post_id: str) -> list[dict]:
    """The keys of the public timeline's chunks of the post's bucket."""
    bucket = public_pages.bucket_key(public_pages.bucket_of(post_id))
    answer = wiring.dynamodb().query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :bucket)",
        ExpressionAttributeValues={":pk": {"S": public_pages.lane_pk(0)}, ":bucket": {"S": bucket}},
    )
    return [{"PK": item["PK"], "SK": item["SK"]} for item in answer["Items"]]


def move_in_public_chunks(post_id: str, action: str) -> None:
    """DELETE the post's id from its public chunks, or ADD it back, below
    the stream (as the stream's write of the chunk may come a moment after
    the marker's)."""
    keys = public_chunks_of(post_id)
    assert keys, "the post's bucket has a chunk"
    with below_the_stream():
        for key in keys:
            wiring.dynamodb().update_item(
                TableName=TABLE,
                Key=key,
                UpdateExpression=f"{action} own :id",
                ExpressionAttributeValues={":id": {"BS": [public_pages.encode_id(post_id)]}},
            )


def hide_from_indexes(post_id: str) -> dict:
    """Make the indexes miss a committed post, as they may for a moment after
    its write (moto's are never late): its item loses its index keys and the
    public timeline's chunks lose its id, while the marker keeps the change.
    Returns the item, for `put_raw` (and `move_in_public_chunks`) to catch up."""
    item = raw_item(post_id)
    move_in_public_chunks(post_id, "DELETE")
    names = [name for index in (BY_AUTHOR_INDEX, PUBLIC_INDEX) for name in index_keys(index)]
    with below_the_stream():
        wiring.dynamodb().update_item(
            TableName=TABLE, Key=dynamo.key(f"POST#{post_id}", "POST"), UpdateExpression="REMOVE " + ", ".join(names)
        )
    return item


@pytest.mark.parametrize("path", USER_PATHS + PUBLIC_PATHS)
def test_a_feed_fetched_right_after_a_post_answers_the_next_conditional_request_304(
    api, tokens, queries, monkeypatch, path
):
    # Given a reader that fetched the feed moments after a post,
    write(api, tokens)
    status, headers, _ = fetch(api, path)
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=30"
    queries.clear()
    forbid_rendering(monkeypatch)

    # when it asks again with its ETag, it gets 304 from the marker alone.
    status, again, body = fetch(api, path, headers={"If-None-Match": headers["ETag"]})
    assert status == 304
    assert body == ""
    assert again["ETag"] == headers["ETag"]
    assert queries == []


def test_a_busy_public_timeline_answers_304_between_its_posts(api, tokens, queries):
    # A post every moment, by turns: each one changes the feed, and between
    # two posts every reader's repeat is a 304 without a query.
    path = "/timeline/public/feed.rss"
    names = list(tokens)
    _, previous, _ = fetch(api, path)
    for n in range(6):
        post = api.post("/posts", {"text": f"busy {n}"}, token=tokens[names[n % 2]]).body
        status, headers, body = fetch(api, path, headers={"If-None-Match": previous["ETag"]})
        assert status == 200
        assert shown_ids(body)[0] == post["id"]
        queries.clear()
        assert fetch(api, path, headers={"If-None-Match": headers["ETag"]})[0] == 304
        assert queries == []
        previous = headers


@pytest.mark.parametrize("path", ["/users/alice/feed.rss", "/timeline/public/feed.atom"])
def test_a_feed_fetched_right_after_its_newest_post_was_deleted_answers_304(api, tokens, path):
    kept = write(api, tokens, ["kept", "bob's"])[0]
    gone = api.post("/posts", {"text": "gone"}, token=tokens["alice"]).body
    assert api.delete(f"/posts/{gone['id']}", token=tokens["alice"]).status == 204

    status, headers, body = fetch(api, path)
    assert status == 200
    assert kept["id"] in shown_ids(body) and gone["id"] not in shown_ids(body)
    assert headers["Cache-Control"] == "public, max-age=30"
    assert fetch(api, path, headers={"If-None-Match": headers["ETag"]})[0] == 304


def assert_behind(api, path: str, before: dict, shows: list[str]) -> dict:
    """The feed misses one of the marker's changes: sent in full, marked so
    that no one keeps it, under an ETag that never gives a 304."""
    status, behind, body = fetch(api, path, headers={"If-None-Match": before["ETag"]})
    assert status == 200
    assert shown_ids(body) == shows
    assert behind["Cache-Control"] == "no-cache"
    assert behind["ETag"] != before["ETag"]
    assert fetch(api, path, headers={"If-None-Match": behind["ETag"]})[0] == 200
    return behind


def assert_current(api, path: str, before: dict, shows: list[str]) -> None:
    """The feed shows the marker's changes: sent under validators that give 304."""
    status, current, body = fetch(api, path, headers={"If-None-Match": before["ETag"]})
    assert status == 200
    assert shown_ids(body) == shows
    assert current["Cache-Control"] == "public, max-age=30"
    assert fetch(api, path, headers={"If-None-Match": current["ETag"]})[0] == 304


@pytest.mark.parametrize("path", ["/users/alice/feed.rss", "/timeline/public/feed.atom"])
def test_while_an_index_misses_a_new_post_the_feed_is_no_cache_and_never_304(api, tokens, path):
    # Given a reader with the feed, and a new post the index has not got yet,
    older = write(api, tokens, ["already indexed"])[0]
    _, before, _ = fetch(api, path)
    new = api.post("/posts", {"text": "not indexed yet"}, token=tokens["alice"]).body
    item = hide_from_indexes(new["id"])

    # the feed is rendered without it and is not kept;
    behind = assert_behind(api, path, before, shows=[older["id"]])

    # once the index has it, the feed shows it under validators that give 304.
    put_raw(item)
    move_in_public_chunks(new["id"], "ADD")
    assert_current(api, path, behind, shows=[new["id"], older["id"]])


@pytest.mark.parametrize("path", ["/users/alice/feed.rss", "/timeline/public/feed.atom"])
def test_while_an_index_still_shows_a_deleted_post_the_feed_is_no_cache_and_never_304(api, tokens, path):
    # Given a reader with the feed, and a delete the index has not seen yet
    # (it still holds the post as it was before the delete),
    gone, kept = (api.post("/posts", {"text": text}, token=tokens["alice"]).body for text in ("gone", "kept"))
    _, before, _ = fetch(api, path)
    as_it_was = raw_item(gone["id"])
    assert api.delete(f"/posts/{gone['id']}", token=tokens["alice"]).status == 204
    deleted = raw_item(gone["id"])
    put_raw(as_it_was)

    behind = assert_behind(api, path, before, shows=[kept["id"], gone["id"]])
    put_raw(deleted)
    assert_current(api, path, behind, shows=[kept["id"]])


def test_if_modified_since_alone_is_never_a_304_while_the_change_is_young(api, tokens):
    # Last-Modified has whole seconds, and a write may commit a little after
    # the time it stamps: only the ETag can tell a young change apart.
    write(api, tokens, ["one"])
    _, young, _ = fetch(api, "/users/alice/feed.rss")
    assert fetch(api, "/users/alice/feed.rss", headers={"If-Modified-Since": young["Last-Modified"]})[0] == 200

    # and a change later in the same second is not hidden once it has settled.
    write(api, tokens, ["two"])
    reply = settled_feeds().live("alice", syndication.FeedKind.RSS, {"If-Modified-Since": young["Last-Modified"]})
    assert reply.body is not None


def test_a_copy_validated_before_its_change_settled_is_sent_again_once_it_has(api, tokens):
    # A young body is checked against the marker's last changes only; once
    # the settle time has passed it is rendered again, under the settled
    # validators, so no copy outlives the settle time on the check alone.
    write(api, tokens, ["just now"])
    _, young, _ = fetch(api, "/users/alice/feed.rss")
    assert young["Cache-Control"] == "public, max-age=30"

    settled = settled_feeds()
    by_etag = settled.live("alice", syndication.FeedKind.RSS, {"If-None-Match": young["ETag"]})
    assert by_etag.body is not None
    by_date = settled.live("alice", syndication.FeedKind.RSS, {"If-Modified-Since": young["Last-Modified"]})
    assert by_date.body is not None
    assert settled.live("alice", syndication.FeedKind.RSS, {"If-None-Match": by_etag.headers["ETag"]}).body is None


def test_a_full_public_feed_needs_no_proof_from_shards_too_old_to_show(api, tokens, use_feeds):
    # With one item shown, every other shard's last post is older than it:
    # however far behind their index is, it cannot change what is shown.
    one_item = dataclasses.replace(wiring.settings(), feed_items=1)
    use_feeds(Feeds(wiring.post_store(), wiring.feed_store(), one_item))
    shards = set()
    for n in range(40):
        post = api.post("/posts", {"text": f"spread {n}"}, token=tokens["alice"]).body
        shards.add(shard_of(post["id"], one_item.write_shards))
        if len(shards) == 2:
            break
    assert len(shards) == 2

    status, headers, body = fetch(api, "/timeline/public/feed.rss")
    assert status == 200
    assert shown_ids(body) == [post["id"]]
    assert headers["Cache-Control"] == "public, max-age=30"
    assert fetch(api, "/timeline/public/feed.rss", headers={"If-None-Match": headers["ETag"]})[0] == 304
