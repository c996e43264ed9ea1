"""DynamoDB adapter for feed markers: the cheap "last changed" state of each
timeline, the users whose feed a delete changed, and what was last published.

A marker lets a feed answer 304 without reading a single post. The markers
are written by the stream consumer (`chalicelib.stream`), from every post
that appears in or disappears from a timeline, one transaction per run of
stream records (the attribute names are these); this module reads them.

- A user's marker is `feed_version` (ADD 1 per change) and `feed_changed_at`
  on the user item `USER#<u>`/`PROFILE`, with `last_post_id` and
  `last_deleted_id`: the newest post added to and deleted from the timeline
  by the last run of records that changed it.
- The public marker is the same four attributes on the stream's status
  items `STATUS#<k>` (`stream.layout`): the sum of the versions, the latest
  time, and the two ids per item.
- A delete also adds its author to `FEEDS#dirty#<s>` (a string set), because a
  deleted post leaves the Public index, where the publisher finds new posts.

The two ids let a reader check that a body rendered from the (eventually
consistent) indexes already shows the marker's last changes; see
`render.shows_last_changes`.

Mirrored posts are written in batches by the mirror, which touches none of
these items: with `reads_mirror`, every marker read also reads the mirror's
state item (`MIRROR / STATE`, in the same BatchGetItem), whose version moves
with every page that stored or deleted posts or changed an account. It is
folded into the public marker, and into the marker of every mirrored
account (`source: mirror`): only those can have mirrored posts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.core.ids import iso_from_millis
from chalicelib.errors import NotFound
from chalicelib.feeds.render import FeedMarker, Lane, Timeline
from chalicelib.mirror.layout import SOURCE as MIRROR_SOURCE
from chalicelib.mirror.state import STATE_KEY as MIRROR_STATE_KEY
from chalicelib.posts.items import key_shard
from chalicelib.stream.layout import status_shard_keys

FEED_VERSION = "feed_version"
FEED_CHANGED_AT = "feed_changed_at"
LAST_POST_ID = "last_post_id"
LAST_DELETED_ID = "last_deleted_id"
EPOCH_ISO = iso_from_millis(0)
_USER_SK = "PROFILE"
_DIRTY_SK = "USERS"
_PUBLISHED_SK = "PUBLISHED"
_CHECKPOINT_SK = "CHECKPOINT"
_OWED_SINCE = "owed_since"


@dataclass(frozen=True)
class Publication:
    """A static copy's record: the edition it was published at (None if
    never), and since when (epoch seconds) a newer one is owed, if it is."""

    edition: str | None = None
    owed_since: int | None = None


@dataclass(frozen=True)
class MirrorMark:
    """The mirror's share of a marker: its version and when it last moved."""

    version: int
    changed_at: str
    caught_up_at: str | None = None  # when the mirror last reached the feed's end


@dataclass(frozen=True)
class Marker:
    """A timeline's marker as stored: a counter, the time of the last change,
    and one lane per part of the index that changed (each public shard, or
    the author); for a timeline that shows mirrored posts, the mirror's
    mark; for an account the primary suspended, `suspended`."""

    version: int
    changed_at: str
    lanes: tuple[Lane, ...] = ()
    mirror: MirrorMark | None = None
    suspended: bool = False

    @property
    def edition(self) -> str:
        """Names what the feed shows: moves with the timeline's own version
        and with the mirror's, so both validators and published copies see
        a mirrored post."""
        return str(self.version) if self.mirror is None else f"{self.version}+m{self.mirror.version}"

    @property
    def last_changed_at(self) -> str:
        """The later of the timeline's last change and the mirror's."""
        return max(self.changed_at, self.mirror.changed_at) if self.mirror else self.changed_at

    def as_feed_marker(self) -> FeedMarker:
        return FeedMarker(changed_at=self.last_changed_at, version=self.edition)


class FeedStore:
    """Reads markers, the dirty set and publish bookkeeping. Takes its client.
    With `reads_mirror` (MIRROR_ENABLED), markers fold in the mirror's state."""

    def __init__(self, client, table_name: str, shards: int, *, reads_mirror: bool = False) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards
        self._reads_mirror = reads_mirror

    # -- markers -----------------------------------------------------------

    def marker(self, timeline: Timeline) -> Marker:
        """One consistent read. Raises NotFound for a user who does not exist."""
        return marker_of(self, timeline)

    def public_marker(self) -> Marker:
        """Sum of the status items' versions and the latest of their times:
        one BatchGetItem, whatever WRITE_SHARDS is."""
        keys = status_shard_keys()
        counters, mirror = self._with_mirror(keys, "read public feed marker")
        return Marker(
            version=sum(item.get(FEED_VERSION, 0) for item in counters),
            changed_at=max((item.get(FEED_CHANGED_AT, EPOCH_ISO) for item in counters), default=EPOCH_ISO),
            lanes=tuple(lane for item in counters if (lane := _lane(item)) is not None),
            mirror=mirror,
        )

    def user_markers(self, usernames: list[str]) -> dict[str, Marker]:
        """Markers of the users that exist; a user never posted to has
        version 0, changed when the user was created."""
        keys = [dynamo.key(f"USER#{name}", _USER_SK) for name in usernames]
        users, mirror = self._with_mirror(keys, "read user feed markers")
        return {
            user["username"]: Marker(
                user.get(FEED_VERSION, 0),
                user.get(FEED_CHANGED_AT, user["created_at"]),
                tuple(lane for lane in [_lane(user)] if lane is not None),
                mirror=mirror if user.get("source") == MIRROR_SOURCE else None,
                suspended=bool(user.get("suspended", False)),
            )
            for user in users
            if "username" in user
        }

    def _with_mirror(self, keys: list[dict], what: str) -> tuple[list[dict], MirrorMark | None]:
        """The items at `keys` and, with `reads_mirror`, the mirror's mark,
        read in the same BatchGetItem (no request more per marker)."""
        if not self._reads_mirror:
            return self._batch_get(keys, what), None
        items = self._batch_get([*keys, dynamo.key(*MIRROR_STATE_KEY)], what)
        state_pk = MIRROR_STATE_KEY[0]
        state = next((item for item in items if item["PK"] == state_pk), {})
        mirror = MirrorMark(state.get("version", 0), state.get("changed_at", EPOCH_ISO), state.get("cursor_at"))
        return [item for item in items if item["PK"] != state_pk], mirror

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

    def published_editions(self, timelines: list[Timeline]) -> dict[Timeline, str]:
        """The marker edition (`Marker.edition`) each timeline's static copy
        was last published at. A copy recorded before editions has only a
        number, which no edition equals: it is published once more."""
        return {
            timeline: found.edition
            for timeline, found in self.publications(timelines).items()
            if found.edition is not None
        }

    def publications(self, timelines: list[Timeline]) -> dict[Timeline, Publication]:
        """What each timeline's copy was last published at, and since when a
        newer edition is owed (`owe`): one BatchGetItem per 100 timelines."""
        by_key = {f"FEEDS#published#{timeline.path}": timeline for timeline in timelines}
        keys = [dynamo.key(pk, _PUBLISHED_SK) for pk in by_key]
        found = self._batch_get(keys, "read published feeds")
        return {by_key[item["PK"]]: Publication(item.get("edition"), item.get(_OWED_SINCE)) for item in found}

    def owe(self, username: str, since: float) -> None:
        """The user's copy is owed a newer edition, from `since` (kept if
        already owed), and the user is dirty, so later runs look again
        whatever checkpoints move. Dirty first: a run dying between the two
        finds the user dirty and owes again."""
        with unavailable_as_domain_error("owe published feed"):
            self._client.update_item(
                TableName=self._table,
                Key=dynamo.key(f"FEEDS#dirty#{key_shard(username, self._shards)}", _DIRTY_SK),
                UpdateExpression="ADD #users :user",
                ExpressionAttributeNames={"#users": "users"},
                ExpressionAttributeValues={":user": {"SS": [username]}},
            )
            self._client.update_item(
                TableName=self._table,
                Key=dynamo.key(f"FEEDS#published#{Timeline(username).path}", _PUBLISHED_SK),
                UpdateExpression=f"SET {_OWED_SINCE} = if_not_exists({_OWED_SINCE}, :since)",
                ExpressionAttributeValues={":since": {"N": str(int(since))}},
            )

    def record_published(self, timeline: Timeline, edition: str) -> None:
        """The copy is at `edition` and owed nothing (the put drops `owed_since`)."""
        with unavailable_as_domain_error("record published feed"):
            self._client.put_item(
                TableName=self._table,
                Item=dynamo.to_item(
                    {"PK": f"FEEDS#published#{timeline.path}", "SK": _PUBLISHED_SK, "edition": edition}
                ),
            )

    # -- the publisher's checkpoint per write shard -----------------------------

    def checkpoint(self, shard: int, *, mirrored: bool = False) -> str:
        """Where the publisher stands in a shard's posts (or, `mirrored`,
        in its mirrored posts)."""
        with unavailable_as_domain_error("read feed checkpoint"):
            key = dynamo.key(_checkpoint_pk(shard, mirrored), _CHECKPOINT_SK)
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return dynamo.from_item(response["Item"])["last_id"] if "Item" in response else ""

    def advance_checkpoint(self, shard: int, new: str, *, mirrored: bool = False) -> None:
        """Move the checkpoint; the publisher holds a lease, so no condition is needed."""
        with unavailable_as_domain_error("advance feed checkpoint"):
            self._client.put_item(
                TableName=self._table,
                Item=dynamo.to_item({"PK": _checkpoint_pk(shard, mirrored), "SK": _CHECKPOINT_SK, "last_id": new}),
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


def _checkpoint_pk(shard: int, mirrored: bool) -> str:
    return f"FEEDS#mirror#{shard}" if mirrored else f"FEEDS#{shard}"


def _lane(item: dict) -> Lane | None:
    """The lane of a marker item, or None if it never changed. An item that
    changed before the ids were recorded has no `last_post_id`: its lane
    then proves nothing (see `render.shows_last_changes`)."""
    if not item.get(FEED_VERSION, 0):
        return None
    return Lane(last_added=item.get(LAST_POST_ID), last_deleted=item.get(LAST_DELETED_ID))
