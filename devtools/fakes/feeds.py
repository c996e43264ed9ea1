"""In-memory stand-ins for the feed adapters: `FeedStore` (markers, the
dirty set, publish bookkeeping) and `StaticFeeds` (the S3 copies).

In DynamoDB the markers are written by the posts store, inside each post's
create or delete transaction; here a test writes them with `add_user`,
`record_post` and `record_delete`. tests/functional/test_feed_store_contract.py
and test_static_feeds_contract.py hold each fake to its adapter's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.feeds.markers import EPOCH_ISO, Marker, Publication, marker_of
from chalicelib.feeds.render import FeedKind, Lane, Timeline, static_key
from chalicelib.feeds.static import STATIC_CACHE_CONTROL
from chalicelib.posts.items import key_shard, shard_of
from chalicelib.stream.layout import status_shard_of


@dataclass(frozen=True)
class _Change:
    """What one timeline part's marker item holds once it changed."""

    version: int = 0
    changed_at: str = EPOCH_ISO
    last_post_id: str | None = None
    last_deleted_id: str | None = None

    def after(self, changed_at: str, post_id: str, *, deleted: bool) -> _Change:
        named = {"last_deleted_id": post_id} if deleted else {"last_post_id": post_id}
        return replace(self, version=self.version + 1, changed_at=changed_at, **named)

    @property
    def lane(self) -> Lane | None:
        return Lane(self.last_post_id, self.last_deleted_id) if self.version else None


class InMemoryFeedStore:
    def __init__(self, shards: int) -> None:
        self._shards = shards
        self._created_at: dict[str, str] = {}
        self._users: dict[str, _Change] = {}
        self._public: dict[int, _Change] = {}
        self._dirty: dict[int, set[str]] = {}
        self._published: dict[Timeline, str] = {}
        self._owed: dict[Timeline, int] = {}
        self._checkpoints: dict[tuple[int, bool], str] = {}

    # -- what the posts store's transactions write in DynamoDB ---------------

    def add_user(self, username: str, created_at: str) -> None:
        self._created_at[username] = created_at

    def record_post(self, author: str, post_id: str, changed_at: str) -> None:
        self._change(author, post_id, changed_at, deleted=False)

    def record_delete(self, author: str, post_id: str, changed_at: str) -> None:
        self._change(author, post_id, changed_at, deleted=True)
        self._dirty.setdefault(shard_of(post_id, self._shards), set()).add(author)

    def _change(self, author: str, post_id: str, changed_at: str, *, deleted: bool) -> None:
        # The public lanes are the stream's status items (`stream.layout`).
        shard = status_shard_of(post_id)
        self._public[shard] = self._public.get(shard, _Change()).after(changed_at, post_id, deleted=deleted)
        self._users[author] = self._users.get(author, _Change()).after(changed_at, post_id, deleted=deleted)

    # -- FeedStore -----------------------------------------------------------

    def marker(self, timeline: Timeline) -> Marker:
        return marker_of(self, timeline)

    def public_marker(self) -> Marker:
        changes = list(self._public.values())
        return Marker(
            version=sum(change.version for change in changes),
            changed_at=max((change.changed_at for change in changes), default=EPOCH_ISO),
            lanes=tuple(change.lane for change in changes if change.lane is not None),
        )

    def user_markers(self, usernames: list[str]) -> dict[str, Marker]:
        markers = {}
        for name in usernames:
            if name not in self._created_at:
                continue
            change = self._users.get(name, _Change(changed_at=self._created_at[name]))
            markers[name] = Marker(change.version, change.changed_at, (change.lane,) if change.lane else ())
        return markers

    def dirty_users(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for shard, users in sorted(self._dirty.items()):
            for username in users:
                found.setdefault(username, []).append(shard)
        return found

    def forget_dirty_user(self, username: str, shards: list[int], published: Marker) -> bool:
        # DynamoDB's condition is on the stored version: a user never
        # changed has none, so no published version matches it.
        change = self._users.get(username)
        if change is None or change.version != published.version:
            return False
        for shard in shards:
            self._dirty.get(shard, set()).discard(username)
        return True

    def published_editions(self, timelines: list[Timeline]) -> dict[Timeline, str]:
        return {timeline: self._published[timeline] for timeline in timelines if timeline in self._published}

    def publications(self, timelines: list[Timeline]) -> dict[Timeline, Publication]:
        return {
            timeline: Publication(self._published.get(timeline), self._owed.get(timeline))
            for timeline in timelines
            if timeline in self._published or timeline in self._owed
        }

    def owe(self, username: str, since: float) -> None:
        self._dirty.setdefault(key_shard(username, self._shards), set()).add(username)
        self._owed.setdefault(Timeline(username), int(since))

    def record_published(self, timeline: Timeline, edition: str) -> None:
        self._published[timeline] = edition
        self._owed.pop(timeline, None)

    def checkpoint(self, shard: int, *, mirrored: bool = False) -> str:
        return self._checkpoints.get((shard, mirrored), "")

    def advance_checkpoint(self, shard: int, new: str, *, mirrored: bool = False) -> None:
        self._checkpoints[(shard, mirrored)] = new


@dataclass(frozen=True)
class StaticObject:
    body: bytes
    content_type: str
    cache_control: str


class InMemoryStaticFeeds:
    """The static copies by S3 key; `objects` is what the bucket would hold."""

    def __init__(self) -> None:
        self.objects: dict[str, StaticObject] = {}

    def put(self, timeline: Timeline, kind: FeedKind, body: bytes) -> str:
        key = static_key(timeline, kind)
        self.objects[key] = StaticObject(bytes(body), kind.content_type, STATIC_CACHE_CONTROL)
        return key

    def remove(self, timeline: Timeline) -> int:
        keys = [static_key(timeline, kind) for kind in FeedKind]
        for key in keys:
            self.objects.pop(key, None)
        return len(keys)
