"""DynamoDB adapter for feed markers: the cheap "last changed" state of each
timeline, the users whose feed a delete changed, and what was last published.

A marker lets a feed answer 304 without reading a single post. The markers
are written by the posts store (`chalicelib.posts`) in the same transaction
as the post create or delete that changes the timeline (the update items are
built here, so the attribute names live in one place); this module reads them.

- A user's marker is `feed_version` (ADD 1 per change) and `feed_changed_at`
  on the user item `USER#<u>`/`PROFILE`, with `last_post_id` and
  `last_deleted_id`: the last post added to and deleted from the timeline.
- The public marker is the same four attributes on the sharded backlog
  counter items `COUNTER#backlog#<s>`: the sum of the versions, the latest
  time, and the two ids per shard.
- A delete also adds its author to `FEEDS#dirty#<s>` (a string set), because a
  deleted post leaves the Public index, where the publisher finds new posts.

The two ids let a reader check that a body rendered from the (eventually
consistent) indexes already shows the marker's last changes; see
`render.shows_last_changes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.core.ids import iso_from_millis
from chalicelib.errors import NotFound
from chalicelib.feeds.render import FeedMarker, Lane, Timeline

FEED_VERSION = "feed_version"
FEED_CHANGED_AT = "feed_changed_at"
LAST_POST_ID = "last_post_id"
LAST_DELETED_ID = "last_deleted_id"
EPOCH_ISO = iso_from_millis(0)
_USER_SK = "PROFILE"
_COUNTER_SK = "COUNTER"
_DIRTY_SK = "USERS"
_PUBLISHED_SK = "PUBLISHED"
_CHECKPOINT_SK = "CHECKPOINT"


@dataclass(frozen=True)
class MarkerChange:
    """The clauses a counter or user update appends to record a change: an
    ADD clause, a SET clause and the values they name (`:one`,
    `:changed_at`, `:changed_post`)."""

    add: str
    set: str
    values: dict


def marker_change(changed_at: str, post_id: str, *, deleted: bool) -> MarkerChange:
    """Bump the version, stamp the time, and name the post: the last added
    or the last deleted one (by commit order, not by id)."""
    post_attribute = LAST_DELETED_ID if deleted else LAST_POST_ID
    return MarkerChange(
        add=f"{FEED_VERSION} :one",
        set=f"{FEED_CHANGED_AT} = :changed_at, {post_attribute} = :changed_post",
        values={":one": {"N": "1"}, ":changed_at": {"S": changed_at}, ":changed_post": {"S": post_id}},
    )


def user_marker_update(
    table: str,
    username: str,
    changed_at: str,
    new_post_id: str | None = None,
    *,
    deleted_post_id: str | None = None,
) -> dict:
    """The transaction item that records a change to `username`'s feed: a
    new post (`new_post_id`) or a delete (`deleted_post_id`), exactly one.

    The same update keeps the user's live post count (+1 with a new post,
    -1 on a delete) and newest post id (`last_post_id`, also the marker's),
    so an Account entity needs no query of the author's posts."""
    if (new_post_id is None) == (deleted_post_id is None):
        raise ValueError("a feed change is either a new post or a delete")
    change = marker_change(changed_at, new_post_id or deleted_post_id, deleted=new_post_id is None)
    values = {**change.values, ":posts": {"N": "1" if new_post_id else "-1"}}
    return {
        "Update": {
            "TableName": table,
            "Key": dynamo.key(f"USER#{username}", _USER_SK),
            "UpdateExpression": f"ADD {change.add}, posts_count :posts SET {change.set}",
            "ExpressionAttributeValues": values,
        }
    }


def dirty_user_update(table: str, shard: int, username: str) -> dict:
    """The transaction item that tells the publisher `username`'s feed lost a post."""
    return {
        "Update": {
            "TableName": table,
            "Key": dynamo.key(f"FEEDS#dirty#{shard}", _DIRTY_SK),
            "UpdateExpression": "ADD #users :user",
            "ExpressionAttributeNames": {"#users": "users"},
            "ExpressionAttributeValues": {":user": {"SS": [username]}},
        }
    }


@dataclass(frozen=True)
class Marker:
    """A timeline's marker as stored: a counter, the time of the last change,
    and one lane per part of the index that changed (each public shard, or
    the author)."""

    version: int
    changed_at: str
    lanes: tuple[Lane, ...] = ()

    def as_feed_marker(self) -> FeedMarker:
        return FeedMarker(changed_at=self.changed_at, version=str(self.version))


class FeedStore:
    """Reads markers, the dirty set and publish bookkeeping. Takes its client."""

    def __init__(self, client, table_name: str, shards: int) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards

    # -- markers -----------------------------------------------------------

    def marker(self, timeline: Timeline) -> Marker:
        """One consistent read. Raises NotFound for a user who does not exist."""
        return marker_of(self, timeline)

    def public_marker(self) -> Marker:
        """Sum of the shards' versions and the latest of their times: one BatchGetItem."""
        keys = [dynamo.key(f"COUNTER#backlog#{shard}", _COUNTER_SK) for shard in range(self._shards)]
        counters = self._batch_get(keys, "read public feed marker")
        return Marker(
            version=sum(item.get(FEED_VERSION, 0) for item in counters),
            changed_at=max((item.get(FEED_CHANGED_AT, EPOCH_ISO) for item in counters), default=EPOCH_ISO),
            lanes=tuple(lane for item in counters if (lane := _lane(item)) is not None),
        )

    def user_markers(self, usernames: list[str]) -> dict[str, Marker]:
        """Markers of the users that exist; a user never posted to has
        version 0, changed when the user was created."""
        keys = [dynamo.key(f"USER#{name}", _USER_SK) for name in usernames]
        users = self._batch_get(keys, "read user feed markers")
        return {
            user["username"]: Marker(
                user.get(FEED_VERSION, 0),
                user.get(FEED_CHANGED_AT, user["created_at"]),
                tuple(lane for lane in [_lane(user)] if lane is not None),
            )
            for user in users
            if "username" in user
        }

    # -- the dirty set --------------------------------------------------------

    def dirty_users(self) -> dict[str, list[int]]:
        """Users whose feed lost a post, with the dirty shards naming them."""
        keys = [dynamo.key(f"FEEDS#dirty#{shard}", _DIRTY_SK) for shard in range(self._shards)]
        found: dict[str, list[int]] = {}
        for item in self._batch_get(keys, "read dirty feeds"):
            shard = int(item["PK"].rsplit("#", 1)[1])
            for username in item.get("users", []):
                found.setdefault(username, []).append(shard)
        return found

    def forget_dirty_user(self, username: str, shards: list[int], published: Marker) -> bool:
        """Drop `username` from the dirty shards, unless its feed changed again.

        A delete that lands after the publisher read the marker re-adds the
        user (a no-op on a set) and bumps the version: the condition on the
        version keeps the user dirty then, so that delete is published too.
        Returns False when the user stays dirty.
        """
        check = {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": dynamo.key(f"USER#{username}", _USER_SK),
                "ConditionExpression": f"{FEED_VERSION} = :published",
                "ExpressionAttributeValues": {":published": {"N": str(published.version)}},
            }
        }
        removals = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": dynamo.key(f"FEEDS#dirty#{shard}", _DIRTY_SK),
                    "UpdateExpression": "DELETE #users :user",
                    "ExpressionAttributeNames": {"#users": "users"},
                    "ExpressionAttributeValues": {":user": {"SS": [username]}},
                }
            }
            for shard in shards
        ]
        try:
            dynamo.transact(self._client, [check, *removals], "forget dirty feed")
        except dynamo.TransactionCancelled:
            return False
        return True

    # -- what was published ---------------------------------------------------

    def published_versions(self, timelines: list[Timeline]) -> dict[Timeline, int]:
        """The marker version each timeline's static copy was last published at."""
        by_key = {f"FEEDS#published#{timeline.path}": timeline for timeline in timelines}
        keys = [dynamo.key(pk, _PUBLISHED_SK) for pk in by_key]
        return {by_key[item["PK"]]: item["version"] for item in self._batch_get(keys, "read published feeds")}

    def record_published(self, timeline: Timeline, version: int) -> None:
        with unavailable_as_domain_error("record published feed"):
            self._client.put_item(
                TableName=self._table,
                Item=dynamo.to_item(
                    {"PK": f"FEEDS#published#{timeline.path}", "SK": _PUBLISHED_SK, "version": version}
                ),
            )

    # -- the publisher's checkpoint per write shard -----------------------------

    def checkpoint(self, shard: int) -> str:
        with unavailable_as_domain_error("read feed checkpoint"):
            response = self._client.get_item(
                TableName=self._table, Key=dynamo.key(f"FEEDS#{shard}", _CHECKPOINT_SK), ConsistentRead=True
            )
        return dynamo.from_item(response["Item"])["last_id"] if "Item" in response else ""

    def advance_checkpoint(self, shard: int, new: str) -> None:
        """Move the checkpoint; the publisher holds a lease, so no condition is needed."""
        with unavailable_as_domain_error("advance feed checkpoint"):
            self._client.put_item(
                TableName=self._table,
                Item=dynamo.to_item({"PK": f"FEEDS#{shard}", "SK": _CHECKPOINT_SK, "last_id": new}),
            )

    def _batch_get(self, keys: list[dict], what: str) -> list[dict]:
        items = dynamo.batch_get(self._client, self._table, keys, what, consistent=True)
        return [dynamo.from_item(item) for item in items]


class MarkerReads(Protocol):
    def public_marker(self) -> Marker: ...

    def user_markers(self, usernames: list[str]) -> dict[str, Marker]: ...


def marker_of(store: MarkerReads, timeline: Timeline) -> Marker:
    """The marker of one timeline from a store's public and per-user reads
    (every FeedStore, the fake included, answers `marker` this way)."""
    if timeline.username is None:
        return store.public_marker()
    found = store.user_markers([timeline.username])
    if timeline.username not in found:
        raise NotFound(f"no user {timeline.username}", code="user_not_found")
    return found[timeline.username]


def _lane(item: dict) -> Lane | None:
    """The lane of a marker item, or None if it never changed. An item that
    changed before the ids were recorded has no `last_post_id`: its lane
    then proves nothing (see `render.shows_last_changes`)."""
    if not item.get(FEED_VERSION, 0):
        return None
    return Lane(last_added=item.get(LAST_POST_ID), last_deleted=item.get(LAST_DELETED_ID))
