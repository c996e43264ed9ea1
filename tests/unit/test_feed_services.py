"""The live feeds and the static publisher over the in-memory feed fakes:
the same rules the functional tests check on moto, in milliseconds."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.feeds.live import Feeds
from chalicelib.feeds.publisher import FeedPublisher
from chalicelib.feeds.render import FeedKind
from chalicelib.posts.items import shard_of
from devtools.fakes.feeds import InMemoryFeedStore, InMemoryStaticFeeds

# Every run publishes what changed (a user's copy is not held back for
# STATIC_FEED_INTERVAL_SECONDS: tests/functional/test_idle_maintenance.py has that).
SETTINGS = Settings(table_name="t", bucket_name="b", admin_token_sha256="", static_feed_interval_seconds=0)
# Long after every post the test makes, so each change has settled.
SETTLED = time.time() + 3600
_ids = ids.UlidFactory()


@dataclass
class _Page:
    posts: list[Post]
    has_more: bool = False


class Posts:
    """The posts the feeds read, counting the reads."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.reads = 0

    def public_posts(self, before_id: str | None, limit: int) -> _Page:
        self.reads += 1
        return _Page(sorted(self.posts, key=lambda post: post.id, reverse=True)[:limit])

    def author_posts(self, author: str, before_id: str | None, limit: int) -> _Page:
        self.reads += 1
        return _Page(sorted((p for p in self.posts if p.author == author), key=lambda p: p.id, reverse=True)[:limit])

    def posts_between(self, shard: int, after_id: str, before_id: str, limit: int) -> list[Post]:
        between = (p for p in self.posts if shard_of(p.id, SETTINGS.write_shards) == shard)
        return sorted((p for p in between if after_id < p.id < before_id), key=lambda p: p.id)[:limit]


class Lease:
    def __init__(self) -> None:
        self.holder: str | None = None

    def acquire(self, owner: str, seconds: float) -> bool:
        if self.holder is not None:
            return False
        self.holder = owner
        return True

    def release(self, owner: str) -> None:
        if self.holder == owner:
            self.holder = None


class World:
    def __init__(self) -> None:
        self.posts = Posts()
        self.markers = InMemoryFeedStore(SETTINGS.write_shards)
        self.static = InMemoryStaticFeeds()
        self.lease = Lease()

    def feeds(self, now: float) -> Feeds:
        return Feeds(self.posts, self.markers, SETTINGS, clock=lambda: now)

    def publisher(self, now: float) -> FeedPublisher:
        return FeedPublisher(self.feeds(now), self.markers, self.posts, self.static, self.lease, SETTINGS)

    def post(self, author: str) -> Post:
        post_id = _ids.new()
        post = Post(id=post_id, author=author, text="hello", created_at=ids.iso_from_millis(ids.ulid_millis(post_id)))
        self.posts.posts.append(post)
        self.markers.record_post(author, post.id, post.created_at)
        return post


@pytest.fixture
def world() -> World:
    world = World()
    world.markers.add_user("alice", "2026-01-01T00:00:00.000Z")
    return world


def test_a_current_copy_is_answered_from_the_marker_alone(world):
    world.post("alice")
    feeds = world.feeds(SETTLED)
    first = feeds.live("alice", FeedKind.RSS, {})
    reads = world.posts.reads

    again = feeds.live("alice", FeedKind.RSS, {"If-None-Match": first.headers["ETag"]})

    assert first.body is not None and again.body is None
    assert again.headers["ETag"] == first.headers["ETag"]
    assert world.posts.reads == reads


def test_a_new_post_changes_the_validators(world):
    world.post("alice")
    before = world.feeds(SETTLED).live("alice", FeedKind.ATOM, {})
    world.post("alice")
    after = world.feeds(SETTLED).live("alice", FeedKind.ATOM, {"If-None-Match": before.headers["ETag"]})
    assert after.body is not None and after.headers["ETag"] != before.headers["ETag"]


def test_the_publisher_writes_each_changed_feed_once_it_has_settled(world):
    world.post("alice")

    report = world.publisher(SETTLED).run(lambda: 600.0, SETTLED)

    assert (report.feeds, report.objects, report.skipped_because) == (2, 4, None)
    assert set(world.static.objects) == {
        "feeds/public.rss",
        "feeds/public.atom",
        "feeds/users/alice.rss",
        "feeds/users/alice.atom",
    }
    assert world.publisher(SETTLED).run(lambda: 600.0, SETTLED).feeds == 0


def test_a_young_change_is_written_but_written_again_next_run(world):
    world.post("alice")
    young = time.time()
    assert world.publisher(young).run(lambda: 600.0, young).feeds == 2
    assert world.publisher(young).run(lambda: 600.0, young).feeds == 2


def test_a_run_is_skipped_while_another_holds_the_lease(world):
    world.post("alice")
    world.lease.acquire("another-run", 600)
    report = world.publisher(SETTLED).run(lambda: 600.0, SETTLED)
    assert (report.feeds, report.skipped_because) == (0, "lease_held")
    assert world.static.objects == {}
