"""One contract, two implementations: the feed markers, the dirty set and
the publish bookkeeping, read by the DynamoDB `FeedStore` (on moto, written
by the posts store's own transactions) and by the in-memory fake."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.accounts.store import User
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.errors import NotFound
from chalicelib.feeds.markers import EPOCH_ISO, Marker
from chalicelib.feeds.render import PUBLIC_TIMELINE, Lane, Timeline
from chalicelib.posts.items import shard_of
from chalicelib.stream.layout import status_shard_of
from devtools.fakes.feeds import InMemoryFeedStore

CREATED_AT = "2026-11-01T00:00:00.000Z"
SHARDS = 4
_ids = ids.UlidFactory()


def now_iso() -> str:
    return wiring.utc_now_iso()


class DynamoDbTimelines:
    """Users and posts as the app writes them; the markers follow in the same transactions."""

    def __init__(self) -> None:
        assert wiring.settings().write_shards == SHARDS
        self.store = wiring.feed_store()
        self._posts = wiring.post_store()

    def add_user(self, username: str) -> None:
        wiring.user_store().create(User(username, CREATED_AT, f"hash-{username}", CREATED_AT))

    def post(self, author: str) -> Post:
        post = new_post(author)
        self._posts.create_post(post, "fingerprint", 0, 0)
        return post

    def delete(self, post: Post) -> None:
        self._posts.mark_deleted(post, now_iso())


class InMemoryTimelines:
    def __init__(self) -> None:
        self.store = InMemoryFeedStore(SHARDS)

    def add_user(self, username: str) -> None:
        self.store.add_user(username, CREATED_AT)

    def post(self, author: str) -> Post:
        post = new_post(author)
        self.store.record_post(author, post.id, now_iso())
        return post

    def delete(self, post: Post) -> None:
        self.store.record_delete(post.author, post.id, now_iso())


def new_post(author: str) -> Post:
    post_id = _ids.new()
    return Post(id=post_id, author=author, text="t", created_at=ids.iso_from_millis(ids.ulid_millis(post_id)))


@pytest.fixture(params=["dynamodb", "memory"])
def timelines(request):
    if request.param == "memory":
        return InMemoryTimelines()
    request.getfixturevalue("moto")
    return DynamoDbTimelines()


def test_an_unknown_user_has_no_marker(timelines):
    with pytest.raises(NotFound):
        timelines.store.marker(Timeline("nobody"))
    assert timelines.store.user_markers(["nobody"]) == {}


def test_a_quiet_timeline_has_version_0(timelines):
    timelines.add_user("alice")
    assert timelines.store.marker(Timeline("alice")) == Marker(0, CREATED_AT, ())
    assert timelines.store.marker(PUBLIC_TIMELINE) == Marker(0, EPOCH_ISO, ())


def test_each_post_moves_its_authors_marker_and_the_public_one(timelines):
    timelines.add_user("alice")
    timelines.add_user("bob")
    before = now_iso()
    timelines.post("alice")
    second = timelines.post("alice")
    timelines.post("bob")

    alice = timelines.store.marker(Timeline("alice"))
    assert (alice.version, alice.lanes) == (2, (Lane(second.id, None),))
    assert alice.changed_at >= before
    public = timelines.store.marker(PUBLIC_TIMELINE)
    assert public.version == 3
    assert public.changed_at >= alice.changed_at


def test_the_public_marker_has_one_lane_per_status_item_naming_its_last_post(timelines):
    # One post at a time: each reaches the stream as a run of its own, which
    # lands on the status item its id picks.
    timelines.add_user("alice")
    posts = [timelines.post("alice") for _ in range(6)]
    last_per_shard = {status_shard_of(post.id): post.id for post in posts}
    lanes = timelines.store.public_marker().lanes
    assert sorted(lane.last_added for lane in lanes) == sorted(last_per_shard.values())
    assert {lane.last_deleted for lane in lanes} == {None}


def test_user_markers_reads_several_users_and_skips_unknown_ones(timelines):
    for name in ("alice", "bob"):
        timelines.add_user(name)
    timelines.post("bob")
    markers = timelines.store.user_markers(["alice", "bob", "nobody"])
    assert set(markers) == {"alice", "bob"}
    assert (markers["alice"].version, markers["bob"].version) == (0, 1)


def test_a_delete_names_the_deleted_post_and_marks_its_author_dirty(timelines):
    timelines.add_user("alice")
    post = timelines.post("alice")
    assert timelines.store.dirty_users() == {}

    timelines.delete(post)

    alice = timelines.store.marker(Timeline("alice"))
    assert (alice.version, alice.lanes) == (2, (Lane(post.id, post.id),))
    assert Lane(post.id, post.id) in timelines.store.public_marker().lanes
    assert timelines.store.dirty_users() == {"alice": [shard_of(post.id, SHARDS)]}


def test_a_dirty_user_is_forgotten_only_at_the_version_published(timelines):
    timelines.add_user("alice")
    timelines.delete(timelines.post("alice"))
    marker = timelines.store.marker(Timeline("alice"))
    shards = timelines.store.dirty_users()["alice"]
    stale = Marker(marker.version - 1, marker.changed_at, marker.lanes)

    # A delete after the publisher read the marker keeps the user dirty.
    assert timelines.store.forget_dirty_user("alice", shards, stale) is False
    assert timelines.store.dirty_users() == {"alice": shards}

    assert timelines.store.forget_dirty_user("alice", shards, marker) is True
    assert timelines.store.dirty_users() == {}


def test_published_editions_are_kept_per_timeline(timelines):
    alice = Timeline("alice")
    assert timelines.store.published_editions([PUBLIC_TIMELINE, alice]) == {}

    timelines.store.record_published(PUBLIC_TIMELINE, "3+m1")
    timelines.store.record_published(alice, "5")
    timelines.store.record_published(alice, "6")

    assert timelines.store.published_editions([PUBLIC_TIMELINE, alice, Timeline("bob")]) == {
        PUBLIC_TIMELINE: "3+m1",
        alice: "6",
    }


def test_checkpoints_start_empty_and_move_per_shard(timelines):
    assert timelines.store.checkpoint(0) == ""
    post_id = _ids.new()
    timelines.store.advance_checkpoint(0, post_id)
    assert (timelines.store.checkpoint(0), timelines.store.checkpoint(1)) == (post_id, "")
