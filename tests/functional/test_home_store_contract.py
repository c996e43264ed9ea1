"""One contract, two implementations: the home timelines' store, kept by the
DynamoDB `HomeStore` (on moto, with the real follow graph and posts) and by
the in-memory fake."""

from __future__ import annotations

import dataclasses

import pytest

from chalicelib import wiring
from chalicelib.core import ids
from chalicelib.core.models import DELETED, Post
from chalicelib.home.layout import Entry
from chalicelib.mastodon.follows import Follow
from chalicelib.stream.consumer import NoHomeFanout
from devtools.fakes.home import InMemoryHomeStore

NOW = "2026-11-23T00:00:00.000Z"
_ids = ids.UlidFactory()


class MemoryWorld:
    def __init__(self) -> None:
        self.store = InMemoryHomeStore()

    def follow(self, follower: str, followee: str, home_at_once: bool = False) -> None:
        self.store.follow(follower, followee, home_at_once=home_at_once)

    def unfollow(self, follower: str, followee: str, home_at_once: bool = False) -> None:
        self.store.unfollow(follower, followee, home_at_once=home_at_once)

    def post(self, author: str) -> Post:
        post = _new_post(author)
        self.store.add_post(post)
        return post

    def delete(self, post: Post) -> None:
        self.store.add_post(dataclasses.replace(post, state=DELETED, deleted_at=NOW))


class DynamoWorld:
    def __init__(self) -> None:
        # The store alone: the fan-out would write entries of its own.
        wiring.override(home_fanout=NoHomeFanout())
        self.store = wiring.home_store()

    def follow(self, follower: str, followee: str, home_at_once: bool = False) -> None:
        assert wiring.follow_store().follow(Follow(follower, followee), NOW, home_at_once=home_at_once)

    def unfollow(self, follower: str, followee: str, home_at_once: bool = False) -> None:
        assert wiring.follow_store().unfollow(follower, followee, home_at_once=home_at_once)

    def post(self, author: str) -> Post:
        post = _new_post(author)
        wiring.post_store().create_post(post, "fingerprint", 0, 0)
        return post

    def delete(self, post: Post) -> None:
        wiring.post_store().mark_deleted(post, NOW)


def _new_post(author: str) -> Post:
    post_id = _ids.new()
    return Post(id=post_id, author=author, text="t", created_at=ids.iso_from_millis(ids.ulid_millis(post_id)))


@pytest.fixture(params=["dynamodb", "memory"])
def world(request):
    if request.param == "memory":
        return MemoryWorld()
    request.getfixturevalue("moto")
    return DynamoWorld()


def entries(owner: str, *post_ids: str, author: str = "alice") -> list[Entry]:
    return [Entry(owner, post_id, author) for post_id in post_ids]


def test_a_window_of_entries_is_newest_first_or_oldest_first_bounds_included(world):
    a, b, c, d = (_ids.new() for _ in range(4))
    world.store.put_entries(entries("bob", b, d, a, c))
    world.store.put_entries(entries("carol", a))

    assert world.store.entries("bob", ids.MIN_ULID, ids.MAX_ULID, 10) == entries("bob", d, c, b, a)
    assert world.store.entries("bob", b, c, 10) == entries("bob", c, b)
    assert world.store.entries("bob", ids.MIN_ULID, ids.MAX_ULID, 2) == entries("bob", d, c)
    assert world.store.entries("bob", ids.MIN_ULID, ids.MAX_ULID, 2, oldest_first=True) == entries("bob", a, b)
    assert world.store.entries("nobody", ids.MIN_ULID, ids.MAX_ULID, 10) == []


def test_puts_and_deletes_are_idempotent(world):
    a, b = _ids.new(), _ids.new()
    world.store.put_entries(entries("bob", a, b))
    world.store.put_entries(entries("bob", a, a))
    world.store.delete_entries(entries("bob", b, b))
    world.store.delete_entries(entries("bob", b))

    assert world.store.all_entries("bob") == entries("bob", a)


def test_all_entries_are_newest_first_with_their_authors(world):
    a, b = _ids.new(), _ids.new()
    world.store.put_entries([Entry("bob", a, "alice"), Entry("bob", b, "dora")])
    assert world.store.all_entries("bob") == [Entry("bob", b, "dora"), Entry("bob", a, "alice")]


def test_page_items_has_the_posts_in_any_state_and_the_merged_accounts(world):
    shown, deleted = world.post("alice"), world.post("alice")
    world.delete(deleted)
    world.follow("bob", "dora")
    assert world.store.add_merged("bob", "dora", while_following=True) is True
    missing = _ids.new()

    items = world.store.page_items("bob", entries("bob", shown.id, deleted.id, missing))

    assert set(items.posts) == {shown.id, deleted.id}
    assert items.posts[shown.id].text == "t" and not items.posts[shown.id].is_deleted
    assert items.posts[deleted.id].is_deleted
    assert items.merged == {"dora"}
    assert items.suspended == frozenset()


def test_follows_made_for_the_home_at_once_are_noted_until_settled(world):
    world.follow("bob", "alice", home_at_once=True)
    world.follow("bob", "carol", home_at_once=True)
    world.follow("bob", "dora")  # the mirror's or an import's: nothing noted
    world.unfollow("bob", "carol", home_at_once=True)
    items = world.store.page_items("bob", [])
    assert (items.backfilling, items.unfollowing) == ({"alice"}, {"carol"})

    world.follow("bob", "carol", home_at_once=True)  # and back
    items = world.store.page_items("bob", [])
    assert (items.backfilling, items.unfollowing) == ({"alice", "carol"}, frozenset())

    world.store.settle_follow("bob", "alice")
    world.store.settle_follow("bob", "alice")
    world.unfollow("bob", "dora", home_at_once=True)
    world.store.settle_unfollow("bob", "dora")
    world.store.settle_unfollow("bob", "erin")  # never noted: nothing to take out
    items = world.store.page_items("bob", [])
    assert (items.backfilling, items.unfollowing) == ({"carol"}, frozenset())
    assert world.store.page_items("alice", []).backfilling == frozenset()


def test_an_account_is_merged_only_while_followed_when_asked(world):
    assert world.store.add_merged("bob", "dora", while_following=True) is False
    assert world.store.add_merged("bob", "bob") is True
    world.follow("bob", "erin")
    assert world.store.add_merged("bob", "erin", while_following=True) is True
    assert world.store.add_merged("bob", "erin", while_following=True) is True
    assert world.store.page_items("bob", []).merged == {"bob", "erin"}

    world.store.remove_merged("bob", "erin")
    world.store.remove_merged("bob", "erin")
    assert world.store.page_items("bob", []).merged == {"bob"}


def test_an_audience_counts_followers_and_keeps_the_flag(world):
    for follower in ("bob", "carol"):
        world.follow(follower, "alice")

    assert world.store.followers("alice") == ["bob", "carol"]
    assert world.store.followers("nobody") == []
    assert world.store.audience("alice").followers == 2
    assert world.store.audience("alice").merged_at_read is False

    world.store.mark_merged_at_read("alice")
    assert world.store.audience("alice").merged_at_read is True


def test_newest_posts_are_live_ones_newest_first(world):
    posts = [world.post("alice") for _ in range(4)]
    world.post("bob")
    world.delete(posts[3])

    newest = world.store.newest_posts("alice", 2)
    assert [(entry.post_id, entry.author, entry.mirrored) for entry in newest] == [
        (posts[2].id, "alice", False),
        (posts[1].id, "alice", False),
    ]


def test_merging_tells_which_owners_merge_an_account_already(world):
    world.follow("bob", "star")
    world.store.add_merged("bob", "star", while_following=True)
    world.store.add_merged("carol", "other")

    assert world.store.merging(["bob", "carol", "dora", "bob"], "star") == {"bob"}
    assert world.store.merging([], "star") == set()
