"""Where home timelines live in the table. Pure.

- `HOME#<owner> / <post id>`: one post in the owner's home timeline:
  `author`, and `m` (true) when the post is a mirrored one (so the page
  reads it at its one key, `MIRROR#<s> / <id>`). About 60 bytes: 1 WU.
- `USER#<owner> / HOME_MERGED`: `accounts`, a string set: the accounts the
  owner's home merges at read (followed accounts with more than
  FANOUT_MAX_FOLLOWERS followers, and the owner if they have that many).
- `USER#<author> / FOLLOWSTATS` (mastodon.follows) gains `merged_at_read`
  (true) once the author's posts stop being fanned out: the flag is sticky.
- The follower's `USER#<owner> / FOLLOWSTATS` also holds two string sets,
  so a home page reads the owner's own follows at once, not a stream lag
  later (docs/DESIGN.md, "Home timeline: your own follows at once"):
  `home_backfilling`, accounts followed through the API whose posts the
  stream has not yet backfilled (a page merges them at read meanwhile),
  and `home_unfollowing`, accounts unfollowed whose entries the stream
  has not yet removed (a page leaves their posts out meanwhile). The
  follow or unfollow transaction sets them in the count update it makes
  anyway (no extra item); the stream takes each account out once done.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from chalicelib.aws import dynamo

HOME_PREFIX = "HOME#"
MERGED_SK = "HOME_MERGED"
MERGED_FLAG = "merged_at_read"
BACKFILLING = "home_backfilling"
UNFOLLOWING = "home_unfollowing"
# On the follow edge: the follow was made with `home_at_once`, so the
# stream takes the followee out of BACKFILLING once it has backfilled.
PENDING_FLAG = "home_pending"
# A fanned-out post trims a home it lands in about once in TRIM_EVERY
# (chosen by a hash of the owner and the post: no state to keep). A trim
# reads the partition (HOME_MAX_ITEMS + about TRIM_EVERY small items: one
# Query) and deletes what is past the newest HOME_MAX_ITEMS.
TRIM_EVERY = 50


@dataclass(frozen=True)
class Entry:
    """One post in one owner's home timeline."""

    owner: str
    post_id: str
    author: str
    mirrored: bool = False


def home_partition(owner: str) -> str:
    return HOME_PREFIX + owner


def entry_key(owner: str, post_id: str) -> dict:
    return dynamo.key(home_partition(owner), post_id)


def entry_item(entry: Entry) -> dict:
    item = {**entry_key(entry.owner, entry.post_id), "author": {"S": entry.author}}
    if entry.mirrored:
        item["m"] = {"BOOL": True}
    return item


def entry_from_item(item: dict) -> Entry:
    owner = item["PK"]["S"].removeprefix(HOME_PREFIX)
    return Entry(owner, item["SK"]["S"], item["author"]["S"], bool(item.get("m", {}).get("BOOL")))


def merged_key(owner: str) -> dict:
    return dynamo.key(f"USER#{owner}", MERGED_SK)


def newest(entries: list[Entry], count: int) -> list[Entry]:
    """The `count` newest of `entries` (ids are time-ordered), one per post."""
    unique = {entry.post_id: entry for entry in entries}
    return sorted(unique.values(), key=lambda entry: entry.post_id, reverse=True)[:count]


def trim_due(owner: str, post_id: str, every: int = TRIM_EVERY) -> bool:
    digest = hashlib.sha256(f"{owner}/{post_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % every == 0
