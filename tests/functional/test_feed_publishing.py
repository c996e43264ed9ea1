"""Static feeds on S3: the maintenance job publishes exactly the feeds whose
marker changed, and a deleted post is gone after the next run."""

from __future__ import annotations

import dataclasses
import time

import boto3
import feedparser
import pytest

from chalicelib import wiring
from chalicelib.aws import dynamo
from chalicelib.aws.lease import Lease
from chalicelib.feeds.live import Feeds
from chalicelib.feeds.publisher import FEEDS_LEASE_NAME, FeedPublisher
from chalicelib.feeds.render import FeedKind, Timeline
from chalicelib.feeds.static import StaticFeeds
from chalicelib.maintenance import Maintenance
from chalicelib.posts.archive import Archive, Spool
from tests.conftest import BUCKET, TABLE

LATER = 3600


def run_job(offset: float = LATER):
    """One maintenance run, `offset` seconds from now (an hour: every
    change has settled), users' feeds republished every run as before
    STATIC_FEED_INTERVAL_SECONDS."""
    settings = dataclasses.replace(wiring.settings(), static_feed_interval_seconds=0)
    now = time.time() + offset
    feeds = Feeds(wiring.post_store(), wiring.feed_store(), settings, clock=lambda: now)
    lease = Lease(wiring.dynamodb(), TABLE, FEEDS_LEASE_NAME)
    publisher = FeedPublisher(
        feeds, wiring.feed_store(), wiring.post_store(), StaticFeeds(wiring.s3(), BUCKET), lease, settings
    )
    s3 = wiring.s3()
    archive, checkpoints = Archive(s3, BUCKET), wiring.archive_checkpoints()
    job = Maintenance(
        wiring.post_store(), Spool(s3, BUCKET), archive, checkpoints, settings, clock=lambda: now, publisher=publisher
    )
    return job.run().feeds, feeds


def static_object(key: str) -> dict:
    return boto3.client("s3").get_object(Bucket=BUCKET, Key=key)


def static_ids(key: str) -> list[str]:
    parsed = feedparser.parse(static_object(key)["Body"].read())
    assert parsed.bozo == 0
    return [entry.id.rsplit(":", 1)[1] for entry in parsed.entries]


def static_keys() -> set[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="feeds/")
    return {obj["Key"] for obj in listing.get("Contents", [])}


@pytest.fixture
def tokens(api):
    return {name: api.new_user(name) for name in ("alice", "bob", "carol")}


def write(api, token, count, prefix="post"):
    return [api.post("/posts", {"text": f"{prefix} {i} <&>"}, token=token).body["id"] for i in range(count)]


def test_one_run_publishes_every_changed_feed_as_the_live_feed(api, tokens):
    write(api, tokens["alice"], 3)
    write(api, tokens["bob"], 2)

    report, feeds = run_job()

    assert report == {"feeds": 3, "objects": 6, "skipped_because": None}
    assert static_keys() == {
        f"feeds/{path}.{kind}" for path in ("public", "users/alice", "users/bob") for kind in ("rss", "atom")
    }
    for timeline in (Timeline(), Timeline("alice"), Timeline("bob")):
        for kind in FeedKind:
            stored = static_object(f"feeds/{timeline.path}.{kind.value}")
            assert stored["ContentType"] == kind.content_type
            assert stored["CacheControl"] == "public, max-age=30"
            # The static copy is the very document the live route serves.
            live = feeds.live(timeline.username, kind, {})
            assert stored["Body"].read().decode() == live.body


def test_a_feed_is_published_in_every_kind_from_one_read_of_its_posts(api, tokens):
    write(api, tokens["alice"], 2)
    queried_indexes = []
    wiring.dynamodb().meta.events.register(
        "provide-client-params.dynamodb.Query", lambda params, **_: queried_indexes.append(params.get("IndexName"))
    )

    report, _ = run_job()

    assert report["objects"] == 2 * report["feeds"] == 4  # the public feed and alice's, RSS and Atom
    assert queried_indexes.count("ByAuthor") == 1


def test_a_run_with_no_change_writes_nothing_and_a_post_rewrites_only_its_feeds(api, tokens):
    write(api, tokens["alice"], 2)
    write(api, tokens["bob"], 1)
    run_job()

    assert run_job()[0]["feeds"] == 0

    write(api, tokens["carol"], 1)
    before = {key: static_object(key)["LastModified"] for key in static_keys() if "alice" in key or "bob" in key}
    report, _ = run_job()
    assert report["feeds"] == 2  # public and carol
    assert {key: static_object(key)["LastModified"] for key in before} == before
    assert "feeds/users/carol.atom" in static_keys()


@pytest.mark.parametrize("replayed_first", [False, True])
def test_a_deleted_post_is_gone_from_the_static_feeds_after_the_next_run(api, tokens, replayed_first):
    kept, gone = write(api, tokens["alice"], 2)
    write(api, tokens["bob"], 1)
    run_job()
    if replayed_first:
        # A replayed post leaves no backlog count to move: the delete must
        # still mark the feeds changed.
        store = wiring.backlog_store()
        claimed = store.claim_for_sending(store.get_post(gone), "run-1", "2026-01-01T00:00:00.000Z")
        store.mark_replayed(claimed, "run-1", "up-1", "2026-01-01T00:00:00.000Z")
        assert run_job()[0]["feeds"] == 0

    assert api.delete(f"/posts/{gone}", token=tokens["alice"]).status == 204
    report, _ = run_job()

    assert report["feeds"] == 2  # public and alice; bob's is untouched
    for kind in ("rss", "atom"):
        assert static_ids(f"feeds/users/alice.{kind}") == [kept]
        assert gone not in static_ids(f"feeds/public.{kind}")
    assert dirty_users() == set()
    assert run_job()[0]["feeds"] == 0


def test_a_change_younger_than_the_settle_time_is_published_again_next_run(api, tokens):
    # The index the feed is read from may lag the marker: a copy rendered
    # that early is not recorded as published, so the next run repeats it.
    write(api, tokens["alice"], 1)
    assert run_job(offset=0)[0]["feeds"] == 2
    assert run_job(offset=0)[0]["feeds"] == 2
    assert run_job()[0]["feeds"] == 2
    assert run_job()[0]["feeds"] == 0


def test_a_delete_that_lands_after_the_marker_was_read_keeps_the_user_dirty(api, tokens):
    first, second = write(api, tokens["alice"], 2)
    run_job()
    api.delete(f"/posts/{first}", token=tokens["alice"])
    stale = wiring.feed_store().user_markers(["alice"])["alice"]
    api.delete(f"/posts/{second}", token=tokens["alice"])

    dirty = wiring.feed_store().dirty_users()["alice"]
    assert wiring.feed_store().forget_dirty_user("alice", dirty, stale) is False
    assert dirty_users() == {"alice"}


def test_a_run_that_finds_the_lease_held_publishes_nothing(api, tokens):
    write(api, tokens["alice"], 1)
    assert Lease(wiring.dynamodb(), TABLE, FEEDS_LEASE_NAME).acquire("another-run", 600)
    assert run_job()[0] == {"feeds": 0, "objects": 0, "skipped_because": "lease_held"}
    assert static_keys() == set()


def dirty_users() -> set[str]:
    found = set()
    client = wiring.dynamodb()
    for shard in range(wiring.settings().write_shards):
        item = client.get_item(TableName=TABLE, Key=dynamo.key(f"FEEDS#dirty#{shard}", "USERS")).get("Item")
        found |= set(dynamo.from_item(item).get("users", [])) if item else set()
    return found
