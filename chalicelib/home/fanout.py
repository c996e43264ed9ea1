"""Fan-out on write: the stream consumer's `HomeFanout` (docs/DESIGN.md,
"Home timeline"). Pure but for its store port.

Every call is safe to repeat, and calls about different items may come in
any order (the stream keeps each item's own order only):

- a post that appears is put in its author's home and each follower's
  (puts of the same item: idempotent), unless its author is merged at read;
- a post that disappears is deleted from the same homes (idempotent);
- a follow backfills the followee's newest posts into the follower's home
  (puts) and trims it, or, for an account merged at read, adds it to the
  follower's merged accounts (a set: idempotent);
- an unfollow deletes the followee's entries from the follower's home and
  removes it from the merged accounts (idempotent);
- a follow or unfollow made for the follower's home at once (through the
  API) is settled last, once its backfill or removal is done: the page
  stops reading around the fan-out (`home.layout`);
- an account that passes FANOUT_MAX_FOLLOWERS is merged at read from then
  on: each follower's merged set gets it (conditional on the follow still
  being there), then the account's flag is set, last, so a run that fails
  half-way is completed by the next follow or post.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.core.models import MIRRORED, Post
from chalicelib.home import layout
from chalicelib.home.layout import Entry
from chalicelib.home.store import Audience


class HomeWrites(Protocol):
    """What the fan-out needs of the home store (`home.store.HomeStore`)."""

    def put_entries(self, entries: list[Entry]) -> None: ...

    def delete_entries(self, entries: list[Entry]) -> None: ...

    def all_entries(self, owner: str) -> list[Entry]: ...

    def audience(self, author: str) -> Audience: ...

    def followers(self, author: str) -> list[str]: ...

    def newest_posts(self, author: str, limit: int) -> list[Entry]: ...

    def mark_merged_at_read(self, author: str) -> None: ...

    def add_merged(self, owner: str, author: str, *, while_following: bool = False) -> bool: ...

    def merging(self, owners: list[str], author: str) -> set[str]: ...

    def remove_merged(self, owner: str, author: str) -> None: ...

    def settle_follow(self, owner: str, followee: str) -> None: ...

    def settle_unfollow(self, owner: str, followee: str) -> None: ...


class HomeFanout:
    def __init__(
        self, store: HomeWrites, max_followers: int, max_items: int, trim_every: int = layout.TRIM_EVERY
    ) -> None:
        self._store = store
        self._max_followers = max_followers
        self._max_items = max_items
        self._trim_every = trim_every

    # -- posts ---------------------------------------------------------------

    def on_post_created(self, post: Post) -> None:
        owners = self._fanned_out_to(post.author)
        if not owners:
            return
        self._store.put_entries([_entry(owner, post) for owner in owners])
        for owner in owners:
            if layout.trim_due(owner, post.id, self._trim_every):
                self.trim(owner)

    def on_post_deleted(self, post: Post) -> None:
        # An author merged at read fans nothing out now; entries of theirs
        # from before are left out of pages by the post's state, and trimmed.
        owners = self._fanned_out_to(post.author)
        self._store.delete_entries([_entry(owner, post) for owner in owners])

    def _fanned_out_to(self, author: str) -> list[str]:
        """The homes an author's posts go to: theirs and their followers';
        none once the author is merged at read."""
        audience = self._store.audience(author)
        if audience.merged_at_read:
            return []
        followers = self._store.followers(author)
        if len(followers) > self._max_followers:
            self._merge_at_read(author, followers)
            return []
        return [author, *followers]

    # -- follows -------------------------------------------------------------

    def on_followed(self, follower: str, followee: str, *, settles: bool = False) -> None:
        self._bring_in(follower, followee)
        if settles:
            self._store.settle_follow(follower, followee)

    def _bring_in(self, follower: str, followee: str) -> None:
        audience = self._store.audience(followee)
        if audience.merged_at_read:
            self._store.add_merged(follower, followee, while_following=True)
            return
        if audience.followers > self._max_followers:
            self._merge_at_read(followee, self._store.followers(followee))
            return
        backfill = [_owned(follower, post) for post in self._store.newest_posts(followee, self._max_items)]
        home = self._store.all_entries(follower)
        # Only what the home keeps is written, and what it then holds past
        # HOME_MAX_ITEMS deleted: following a prolific account from a full
        # home costs the entries that stay, not HOME_MAX_ITEMS puts.
        kept = {entry.post_id for entry in layout.newest(home + backfill, self._max_items)}
        held = {entry.post_id for entry in home}
        new = [entry for entry in backfill if entry.post_id in kept and entry.post_id not in held]
        past = [entry for entry in home if entry.post_id not in kept]
        if new:
            self._store.put_entries(new)
        if past:
            self._store.delete_entries(past)

    def on_unfollowed(self, follower: str, followee: str) -> None:
        self._store.remove_merged(follower, followee)
        gone = [entry for entry in self._store.all_entries(follower) if entry.author == followee]
        self._store.delete_entries(gone)
        # The edge is gone, so whether it was unfollowed through the API is
        # not known here: settled always (a set DELETE of what may be absent).
        self._store.settle_unfollow(follower, followee)

    def _merge_at_read(self, author: str, followers: list[str]) -> None:
        # One transaction per follower, in turn (once per account: about
        # FANOUT_MAX_FOLLOWERS of them, some 10 ms each on AWS). Followers
        # merging it already are skipped, so a switch cut short by the
        # function's timeout goes on where it stopped when redelivered.
        self._store.add_merged(author, author)
        done = self._store.merging(followers, author)
        for follower in followers:
            if follower not in done:
                self._store.add_merged(follower, author, while_following=True)
        self._store.mark_merged_at_read(author)

    # -- trim ------------------------------------------------------------------

    def trim(self, owner: str) -> int:
        """Delete what is past the owner's newest HOME_MAX_ITEMS entries;
        how many were."""
        past = self._store.all_entries(owner)[self._max_items :]
        if past:
            self._store.delete_entries(past)
        return len(past)


def _owned(owner: str, found: Entry) -> Entry:
    """A backfilled post (an entry of nobody's home yet) in `owner`'s."""
    return Entry(owner, found.post_id, found.author, found.mirrored)


def _entry(owner: str, post: Post) -> Entry:
    return Entry(owner, post.id, post.author, post.state == MIRRORED)
