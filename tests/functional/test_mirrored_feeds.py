"""Feeds of mirrored posts: the mirror's version is part of every feed
marker that can show a mirrored post, read in the marker's own
BatchGetItem, so a conditional request sees the mirror's new posts and a
current copy still costs no Query."""

from __future__ import annotations

import time

import feedparser
import pytest

from chalicelib import wiring
from chalicelib.aws import clients as aws
from chalicelib.core.clock import iso_at
from chalicelib.feeds.live import Feeds
from chalicelib.mirror import layout
from chalicelib.mirror.service import Mirror
from chalicelib.upstream.tokens import ensure_key
from devtools.fakes.mirror import ScriptedChangeFeed
from tests.functional.test_feed_publishing import run_job, static_ids
from tests.functional.test_feeds_api import fetch

EARLY = "2026-01-01T00:00:00.000Z"
FEED_PATHS = ["/timeline/public/feed.rss", "/timeline/public/feed.atom", "/users/bob/feed.rss", "/users/bob/feed.atom"]


@pytest.fixture(autouse=True)
def mirroring(monkeypatch):
    monkeypatch.setenv("MIRROR_ENABLED", "true")


@pytest.fixture
def settled(api):
    """The live feeds an hour later: every change, the mirror's too, has settled."""
    later = time.time() + 3600
    wiring.override(feeds=Feeds(wiring.post_store(), wiring.feed_store(), wiring.settings(), clock=lambda: later))


class PrimaryFeed:
    """The primary's change feed, mirrored by the real `Mirror` job into the table."""

    def __init__(self) -> None:
        ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
        self.feed = ScriptedChangeFeed()
        self.mirror = Mirror(self.feed, wiring.mirror_store(), wiring.mirror_state(), retention_days=7)

    def account(self, username: str, *, suspended: bool = False) -> None:
        self.feed.changes.append({"type": "account", "username": username, "created_at": EARLY, "suspended": suspended})

    def post(self, upstream_id: str, author: str, created_at: str = EARLY, *, deleted: bool = False) -> str:
        self.feed.changes.append(
            {
                "type": "post",
                "id": upstream_id,
                "author": author,
                "text": f"{upstream_id} by {author}",
                "created_at": created_at,
                "deleted": deleted,
            }
        )
        return layout.mirrored_post_id(created_at, upstream_id)

    def run(self) -> None:
        assert self.mirror.run(lambda: 60.0).reached_end


@pytest.fixture
def primary(api):
    primary = PrimaryFeed()
    primary.account("bob")
    primary.post("p1", "bob")
    primary.run()
    return primary


@pytest.fixture
def dynamodb_calls():
    """Every DynamoDB operation the app sends, by name."""
    sent: list[str] = []

    def record(model, **_):
        sent.append(model.name)

    events = wiring.dynamodb().meta.events
    events.register("before-call.dynamodb", record)
    yield sent
    events.unregister("before-call.dynamodb", record)


def entry_ids(body: str) -> list[str]:
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0
    return [entry.id.rsplit(":", 1)[1] for entry in parsed.entries]


@pytest.mark.parametrize("path", FEED_PATHS)
def test_a_post_the_mirror_stores_ends_the_304s_of_a_feed_that_shows_it(api, primary, settled, path):
    status, headers, body = fetch(api, path)
    assert status == 200 and len(entry_ids(body)) == 1

    new = primary.post("p2", "bob", "2026-01-01T01:00:00.000Z")
    primary.run()

    status, again, body = fetch(api, path, {"If-None-Match": headers["ETag"]})
    assert status == 200
    assert entry_ids(body)[0] == new
    assert again["ETag"] != headers["ETag"]


@pytest.mark.parametrize("path", FEED_PATHS)
def test_with_nothing_new_a_feed_of_mirrored_posts_is_304_from_one_batch_get(
    api, primary, settled, dynamodb_calls, path
):
    status, headers, _ = fetch(api, path)
    assert status == 200
    dynamodb_calls.clear()

    assert fetch(api, path, {"If-None-Match": headers["ETag"]})[0] == 304
    assert dynamodb_calls == ["BatchGetItem"]


def test_a_stack_that_does_not_mirror_reads_no_mirror_state_for_a_304(api, monkeypatch, dynamodb_calls):
    monkeypatch.setenv("MIRROR_ENABLED", "false")
    wiring.reset()
    api.new_user("alice")
    _, headers, _ = fetch(api, "/users/alice/feed.rss")
    requests = []
    events = wiring.dynamodb().meta.events
    events.register("before-parameter-build.dynamodb", lambda params, **_: requests.append(params))
    assert fetch(api, "/users/alice/feed.rss", {"If-None-Match": headers["ETag"]})[0] == 304
    (batch,) = requests
    keys = next(iter(batch["RequestItems"].values()))["Keys"]
    assert [key["PK"]["S"] for key in keys] == ["USER#alice"]


def test_a_feed_of_an_account_that_is_not_mirrored_keeps_its_304_when_the_mirror_moves(api, primary, settled):
    api.new_user("alice")
    _, headers, _ = fetch(api, "/users/alice/feed.rss")
    primary.post("p2", "bob", "2026-01-01T01:00:00.000Z")
    primary.run()
    assert fetch(api, "/users/alice/feed.rss", {"If-None-Match": headers["ETag"]})[0] == 304


def test_a_young_mirror_change_is_sent_under_a_validator_that_changes_once_it_settles(api, primary):
    path = "/timeline/public/feed.atom"
    new = primary.post("p2", "bob", "2026-01-01T01:00:00.000Z")
    primary.run()
    status, young, body = fetch(api, path)
    assert status == 200 and entry_ids(body)[0] == new
    assert fetch(api, path, {"If-None-Match": young["ETag"]})[0] == 304

    later = time.time() + 3600
    wiring.override(feeds=Feeds(wiring.post_store(), wiring.feed_store(), wiring.settings(), clock=lambda: later))
    status, settled_headers, _ = fetch(api, path, {"If-None-Match": young["ETag"]})
    assert status == 200 and settled_headers["ETag"] != young["ETag"]


def test_the_static_feeds_are_published_again_when_the_mirror_stores_a_post(api, primary):
    run_job()
    assert len(static_ids("feeds/public.atom")) == 1
    assert len(static_ids("feeds/users/bob.rss")) == 1

    new = primary.post("p2", "bob", iso_at(time.time() - 120))
    primary.run()
    report, _ = run_job()

    assert static_ids("feeds/public.atom")[0] == new
    assert static_ids("feeds/users/bob.rss")[0] == new
    assert report["feeds"] == 2

    report, _ = run_job()
    assert report["feeds"] == 0
