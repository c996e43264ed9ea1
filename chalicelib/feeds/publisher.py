"""The static copies of the feeds: the job step that publishes, to S3, the
feed of every timeline whose marker changed since its last publish.

A copy is rendered exactly as the live route renders it (`feeds.live`). A
copy of a change younger than `ARCHIVE_SETTLE_SECONDS` may miss that change
(the indexes are eventually consistent), so it is written but not recorded
as published: the next run writes it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.aws.lease import Lease
from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.feeds.live import Feeds
from chalicelib.feeds.markers import FeedStore, Marker, MirrorMark, Publication
from chalicelib.feeds.render import PUBLIC_TIMELINE, Timeline
from chalicelib.feeds.static import StaticFeeds
from chalicelib.stream import active

FEEDS_LEASE_NAME = "feeds"
# The publisher's cursors over the stream's notes (`stream.active`).
FEEDS_READER = "feeds"
MIRROR_FEEDS_READER = "feeds-mirror"
# How long the publisher's lease outlives the run's own deadline.
LEASE_GRACE_SECONDS = 30
# Stop publishing with this much of the invocation left; the rest waits for
# the next run (the checkpoints do not move, so nothing is skipped).
PUBLISH_SAFETY_SECONDS = 5


class NewPosts(Protocol):
    """The posts of one public shard between two ids, oldest first: the
    posts written here, and (with the mirror) the mirrored ones."""

    def posts_between(self, shard: int, after_id: str, before_id: str, limit: int) -> list[Post]: ...

    def mirrored_posts_between(self, shard: int, after_id: str, before_id: str, limit: int) -> list[Post]: ...


@dataclass
class PublishReport:
    feeds: int = 0
    objects: int = 0
    skipped_because: str | None = None

    def to_dict(self) -> dict:
        return {"feeds": self.feeds, "objects": self.objects, "skipped_because": self.skipped_because}


class FeedPublisher:
    """Publishes static copies of the feeds whose marker changed since their
    last publish: the public feed, the authors of posts after the
    publisher's checkpoints, and the users a delete marked dirty.

    One run at a time (a lease): two overlapping runs could otherwise leave
    an older copy in S3 under a newer recorded version.
    """

    def __init__(
        self,
        feeds: Feeds,
        markers: FeedStore,
        store: NewPosts,
        static: StaticFeeds,
        lease: Lease,
        settings: Settings,
        active_shards: active.ActiveShardStore | None = None,
    ) -> None:
        self._visits = active.Visits(active_shards, settings.archive_settle_seconds, settings.write_shards)
        self._feeds = feeds
        self._markers = markers
        self._store = store
        self._static = static
        self._lease = lease
        self._settings = settings

    def run(self, remaining_seconds: Callable[[], float], now: float) -> PublishReport:
        report = PublishReport()
        owner = uuid.uuid4().hex
        if not self._lease.acquire(owner, remaining_seconds() + LEASE_GRACE_SECONDS):
            report.skipped_because = "lease_held"
            return report
        try:
            self._publish(report, remaining_seconds, now)
        finally:
            self._lease.release(owner)
        return report

    def _publish(self, report: PublishReport, remaining_seconds: Callable[[], float], now: float) -> None:
        dirty = self._markers.dirty_users()
        public = self._markers.public_marker()
        own = self._visits.plan(FEEDS_READER, active.POSTS, now)
        authors, moves, own_left = self._authors_after_checkpoints(
            own.shards, now, self._store.posts_between, _settle_bound(now, self._settings)
        )
        mirrored_authors, mirror_moves, mirror_visit, mirror_left = self._mirrored_authors(now, public.mirror)
        users = self._markers.user_markers(sorted(authors | mirrored_authors | set(dirty)))
        markers = {PUBLIC_TIMELINE: public} | {Timeline(n): m for n, m in users.items()}
        publications = self._markers.publications(list(markers))
        owed: set[str] = set()
        for timeline, marker in markers.items():
            if remaining_seconds() < PUBLISH_SAFETY_SECONDS:
                report.skipped_because = "out_of_time"
                return
            found = publications.get(timeline, Publication())
            if found.edition == marker.edition:
                continue
            if self._due(timeline, marker, found, now):
                self._publish_one(timeline, marker, report)
            else:
                owed.add(timeline.username)
                if found.owed_since is None or timeline.username not in dirty:
                    self._markers.owe(timeline.username, now)
        for username, shards in dirty.items():
            marker = markers.get(Timeline(username))
            if username not in owed and marker is not None and self._feeds.is_settled(marker):
                self._markers.forget_dirty_user(username, shards, marker)
        for shard, last_id in moves.items():
            self._markers.advance_checkpoint(shard, last_id)
        for shard, last_id in mirror_moves.items():
            self._markers.advance_checkpoint(shard, last_id, mirrored=True)
        self._visits.finish(own, own_left)
        if mirror_visit is not None:
            self._visits.finish(mirror_visit, mirror_left)

    def _due(self, timeline: Timeline, marker: Marker, found: Publication, now: float) -> bool:
        """The public copy is due every run; a user's copy once its newer
        edition has been owed `STATIC_FEED_INTERVAL_SECONDS` (at most one
        publish per interval), and at once when the account is suspended."""
        interval = self._settings.static_feed_interval_seconds
        if timeline.username is None or marker.suspended or interval == 0:
            return True
        return found.owed_since is not None and now - found.owed_since >= interval

    def _publish_one(self, timeline: Timeline, marker: Marker, report: PublishReport) -> None:
        if marker.suspended:
            # The account's page is gone (the live route answers 404): so is its copy.
            report.objects += self._static.remove(timeline)
        else:
            for kind, body in self._feeds.render_every_kind(timeline).items():
                self._static.put(timeline, kind, body)
                report.objects += 1
        report.feeds += 1
        if self._feeds.is_settled(marker):
            self._markers.record_published(timeline, marker.edition)

    def _mirrored_authors(self, now: float, mirror: MirrorMark | None):
        """Authors of the mirrored posts after each noted shard's mirror
        checkpoint. A mirrored post's id carries the primary's created_at, so
        it is stored a mirror lag after its time: a checkpoint moves only past
        ids older than the settle time before the mirror last reached the
        feed's end, by when every post created earlier was stored."""
        if mirror is None:
            return set(), {}, None, set()
        if mirror.caught_up_at is None:
            bound = ids.smallest_ulid_at(0)  # never caught up yet: nothing is behind us for sure
        else:
            caught_up = min(ids.millis_from_iso(mirror.caught_up_at) / 1000, now)
            bound = _settle_bound(caught_up, self._settings)
        visit = self._visits.plan(MIRROR_FEEDS_READER, active.MIRRORED, now)
        found = self._authors_after_checkpoints(
            visit.shards, now, self._store.mirrored_posts_between, bound, mirrored=True
        )
        return (*found[:2], visit, found[2])

    def _authors_after_checkpoints(
        self,
        shards: list[int],
        now: float,
        posts_between: Callable[..., list[Post]],
        settled_before: str,
        *,
        mirrored: bool = False,
    ) -> tuple[set[str], dict[int, str], set[int]]:
        """Authors of the posts after each shard's checkpoint, where each
        checkpoint may move (to the newest post before `settled_before` only,
        because a post's id is made before its write commits and may show up
        late), and the shards left with posts behind their checkpoint."""
        until = ids.smallest_ulid_at(int(now * 1000) + 1000)
        limit = self._settings.archive_batch_max
        authors: set[str] = set()
        moves: dict[int, str] = {}
        left: set[int] = set()
        for shard in shards:
            checkpoint = self._markers.checkpoint(shard, mirrored=mirrored)
            posts = posts_between(shard, checkpoint, until, limit)
            authors |= {post.author for post in posts}
            settled = [post.id for post in posts if post.id < settled_before]
            if settled:
                moves[shard] = settled[-1]
            if len(posts) == limit or len(settled) < len(posts):
                left.add(shard)
        return authors, moves, left


def _settle_bound(moment: float, settings: Settings) -> str:
    """The smallest id of the settle time before `moment`: posts below it are settled."""
    return ids.smallest_ulid_at(int(moment * 1000) - settings.archive_settle_seconds * 1000)
