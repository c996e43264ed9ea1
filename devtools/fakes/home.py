"""In-memory stand-in for the home timelines' store (`home.store.HomeStore`),
with the follow graph and the posts it reads. tests/functional/
test_home_store_contract.py runs one suite against both."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from chalicelib.core.models import Post
from chalicelib.home.layout import Entry
from chalicelib.home.store import Audience, PageItems


@dataclass
class InMemoryHomeStore:
    homes: dict[str, dict[str, Entry]] = field(default_factory=dict)
    merged: dict[str, set[str]] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)
    following: set[tuple[str, str]] = field(default_factory=set)  # (follower, followee)
    posts: dict[str, Post] = field(default_factory=dict)
    suspended: set[str] = field(default_factory=set)
    backfilling: dict[str, set[str]] = field(default_factory=dict)
    unfollowing: dict[str, set[str]] = field(default_factory=dict)
    requests: int = 0  # every call that would be a request to DynamoDB (at least one)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what tests set up (the follow graph and the posts, as other stores keep them)

    def follow(self, follower: str, followee: str, *, home_at_once: bool = False) -> None:
        self.following.add((follower, followee))
        if home_at_once:  # what the follow transaction notes (mastodon.follows)
            self.backfilling.setdefault(follower, set()).add(followee)
            self.unfollowing.get(follower, set()).discard(followee)

    def unfollow(self, follower: str, followee: str, *, home_at_once: bool = False) -> None:
        self.following.discard((follower, followee))
        if home_at_once:
            self.unfollowing.setdefault(follower, set()).add(followee)
            self.backfilling.get(follower, set()).discard(followee)

    def add_post(self, post: Post) -> None:
        self.posts[post.id] = post

    # -- the port --------------------------------------------------------------

    def put_entries(self, entries: list[Entry]) -> None:
        with self._lock:
            self.requests += 1
            for entry in entries:
                self.homes.setdefault(entry.owner, {})[entry.post_id] = entry

    def delete_entries(self, entries: list[Entry]) -> None:
        with self._lock:
            self.requests += 1
            for entry in entries:
                self.homes.get(entry.owner, {}).pop(entry.post_id, None)

    def entries(self, owner: str, lowest: str, highest: str, limit: int, oldest_first: bool = False) -> list[Entry]:
        self.requests += 1
        found = [entry for post_id, entry in self.homes.get(owner, {}).items() if lowest <= post_id <= highest]
        return sorted(found, key=lambda entry: entry.post_id, reverse=not oldest_first)[:limit]

    def all_entries(self, owner: str) -> list[Entry]:
        self.requests += 1
        return sorted(self.homes.get(owner, {}).values(), key=lambda entry: entry.post_id, reverse=True)

    def page_items(self, owner: str, entries: list[Entry]) -> PageItems:
        self.requests += 1
        posts = {entry.post_id: self.posts[entry.post_id] for entry in entries if entry.post_id in self.posts}
        authors = {entry.author for entry in entries}
        return PageItems(
            posts,
            frozenset(self.merged.get(owner, ())),
            frozenset(self.suspended & authors),
            frozenset(self.backfilling.get(owner, ())),
            frozenset(self.unfollowing.get(owner, ())),
        )

    def audience(self, author: str) -> Audience:
        self.requests += 1
        return Audience(len(self.followers_of(author)), author in self.flagged)

    def followers(self, author: str) -> list[str]:
        self.requests += 1
        return self.followers_of(author)

    def followers_of(self, author: str) -> list[str]:
        return sorted(follower for follower, followee in self.following if followee == author)

    def newest_posts(self, author: str, limit: int) -> list[Entry]:
        self.requests += 1
        live = [post for post in self.posts.values() if post.author == author and not post.is_deleted]
        live.sort(key=lambda post: post.id, reverse=True)
        return [Entry("", post.id, post.author, post.state == "mirrored") for post in live[:limit]]

    def mark_merged_at_read(self, author: str) -> None:
        self.requests += 1
        self.flagged.add(author)

    def add_merged(self, owner: str, author: str, *, while_following: bool = False) -> bool:
        with self._lock:
            self.requests += 1
            if while_following and (owner, author) not in self.following:
                return False
            self.merged.setdefault(owner, set()).add(author)
            return True

    def merging(self, owners: list[str], author: str) -> set[str]:
        self.requests += 1
        return {owner for owner in owners if author in self.merged.get(owner, set())}

    def remove_merged(self, owner: str, author: str) -> None:
        with self._lock:
            self.requests += 1
            self.merged.get(owner, set()).discard(author)

    def settle_follow(self, owner: str, followee: str) -> None:
        with self._lock:
            self.requests += 1
            self.backfilling.get(owner, set()).discard(followee)

    def settle_unfollow(self, owner: str, followee: str) -> None:
        with self._lock:
            self.requests += 1
            self.unfollowing.get(owner, set()).discard(followee)
