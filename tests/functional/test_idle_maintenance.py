"""The maintenance job with the stream's notes of active shards, as the
schedule builds it: after its first run it reads only the shards that got
posts, and still archives and publishes every post exactly once, a post
folded in late from the spool (an old id, below every checkpoint) too; a
user's static feed is republished at most once per interval."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import pytest

from chalicelib import wiring
from chalicelib.aws.lease import Lease
from chalicelib.core import ids
from chalicelib.core.clock import iso_at
from chalicelib.core.models import Post
from chalicelib.feeds.live import Feeds
from chalicelib.feeds.publisher import FEEDS_LEASE_NAME, FeedPublisher
from chalicelib.feeds.static import StaticFeeds
from chalicelib.maintenance import Maintenance
from chalicelib.posts.archive import Archive, Spool
from chalicelib.posts.items import shard_of
from tests.conftest import BUCKET, TABLE
from tests.functional.test_archive import archived_records
from tests.functional.test_feed_publishing import static_ids, static_keys


class CountingStore:
    """The post store, counting the shards the job reads its new posts from."""

    def __init__(self, store) -> None:
        self._store = store
        self.shards_read: list[int] = []

    def posts_between(self, shard, after_id, before_id, limit):
        self.shards_read.append(shard)
        return self._store.posts_between(shard, after_id, before_id, limit)

    def __getattr__(self, name):
        return getattr(self._store, name)


def job(clock=None, interval: int = 0, store=None) -> Maintenance:
    settings = dataclasses.replace(wiring.settings(), archive_settle_seconds=0, static_feed_interval_seconds=interval)
    clock = clock or (lambda: time.time() + 1)
    store = store or wiring.post_store()
    feeds = Feeds(wiring.post_store(), wiring.feed_store(), settings, clock=clock)
    lease = Lease(wiring.dynamodb(), TABLE, FEEDS_LEASE_NAME)
    static = StaticFeeds(wiring.s3(), BUCKET)
    publisher = FeedPublisher(feeds, wiring.feed_store(), store, static, lease, settings, wiring.active_shards())
    s3 = wiring.s3()
    return Maintenance(
        store,
        Spool(s3, BUCKET),
        Archive(s3, BUCKET),
        wiring.archive_checkpoints(),
        settings,
        clock=clock,
        publisher=publisher,
        active_shards=wiring.active_shards(),
    )


@pytest.fixture
def tokens(api):
    return {name: api.new_user(name) for name in ("alice", "bob")}


def write(api, token, count, prefix="post"):
    return [api.post("/posts", {"text": f"{prefix} {i}"}, token=token).body["id"] for i in range(count)]


def test_after_its_first_run_the_job_reads_only_the_shards_that_got_posts(api, tokens):
    job().run()  # the first run visits every shard once
    idle = CountingStore(wiring.post_store())
    job(store=idle).run()
    assert idle.shards_read == [], "nothing posted: no shard read"

    post_id = write(api, tokens["alice"], 1)[0]
    busy = CountingStore(wiring.post_store())
    report = job(store=busy).run()

    shard = shard_of(post_id, wiring.settings().write_shards)
    assert set(busy.shards_read) == {shard}, "the archiver and the publisher read the post's shard only"
    assert report.archived == 1
    assert post_id in static_ids("feeds/users/alice.atom")


def test_every_post_is_archived_once_in_one_object_per_hour_and_run(api, tokens):
    job().run()
    posts = write(api, tokens["alice"], 6) + write(api, tokens["bob"], 6)
    report = job().run()
    job().run()

    counts = Counter(record["id"] for record in archived_records())
    assert set(counts) == set(posts) and max(counts.values()) == 1
    hours = {post_id[:8] for post_id in posts}  # a dozen posts made within a second or two
    assert len(report.archive_objects) <= len(hours) + 1, "one object per hour prefix, not per shard"


def old_id_in_a_checkpointed_shard(seconds_ago: int) -> str:
    """An id from `seconds_ago`, in a shard whose feed and archive
    checkpoints have moved past it (so no checkpoint query can find it)."""
    store, checkpoints = wiring.feed_store(), wiring.archive_checkpoints()
    shards = wiring.settings().write_shards
    for n in range(1000):
        post_id = ids.ulid_from_value(ids.ulid_value(ids.smallest_ulid_at((int(time.time()) - seconds_ago) * 1000)) + n)
        shard = shard_of(post_id, shards)
        if store.checkpoint(shard) > post_id and checkpoints.get(shard) > post_id:
            return post_id
    raise AssertionError("no shard has a checkpoint")


def test_a_post_folded_in_late_with_an_old_id_is_archived_once_and_reaches_its_static_feed(api, tokens):
    job().run()
    write(api, tokens["alice"], 12)
    job().run()
    old = old_id_in_a_checkpointed_shard(3600)
    late = Post(id=old, author="bob", text="accepted during the outage", created_at=iso_at(time.time() - 3600))
    Spool(wiring.s3(), BUCKET).put(late, "fingerprint")

    job().run()
    job().run()

    assert Counter(record["id"] for record in archived_records())[old] == 1
    assert old in static_ids("feeds/users/bob.atom")
    assert old in static_ids("feeds/public.atom")


def test_a_users_static_feed_is_republished_at_most_once_per_interval_and_a_delete_reaches_it_within_it(api, tokens):
    interval, start = 600, time.time()
    at = lambda seconds: lambda: start + seconds  # noqa: E731 - a clock
    first = write(api, tokens["alice"], 1)[0]
    job(at(1), interval).run()
    assert "feeds/users/alice.atom" not in static_keys(), "owed, not yet published"
    assert first in static_ids("feeds/public.atom"), "the public copy keeps the one-run schedule"

    job(at(interval + 2), interval).run()
    assert static_ids("feeds/users/alice.atom") == [first]

    second = write(api, tokens["alice"], 1)[0]
    job(at(interval + 3), interval).run()
    assert static_ids("feeds/users/alice.atom") == [first], "at most once per interval"
    api.delete(f"/posts/{first}", token=tokens["alice"])
    job(at(interval + 4), interval).run()
    assert static_ids("feeds/users/alice.atom") == [first]

    job(at(2 * interval + 4), interval).run()
    assert static_ids("feeds/users/alice.atom") == [second], "the new post and the delete, within the interval"
