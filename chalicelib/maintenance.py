"""The scheduled maintenance job: fold the S3 spool into DynamoDB, replay,
mirror the primary (its S3 inbox and its change feed), write new posts to
the S3 archive in batches, and publish the changed feeds. Every step is
idempotent, so a run that dies part-way is simply repeated by the next one."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.errors import DuplicateIdempotencyKey, PostExists
from chalicelib.feeds.publisher import FeedPublisher
from chalicelib.observability import count, logger
from chalicelib.posts.archive import Archive, Spool
from chalicelib.posts.checkpoints import ArchiveCheckpoints, ArchivePlan
from chalicelib.posts.items import shard_of
from chalicelib.posts.store import PostStore
from chalicelib.recovery.service import Recovery
from chalicelib.stream import active
from chalicelib.stream.effects import FOLDED_SOURCE

if TYPE_CHECKING:
    from chalicelib.mirror.inbox import Inbox
    from chalicelib.mirror.service import Mirror

SPOOL_SOURCE = FOLDED_SOURCE
ARCHIVE_READER = "archive"
# What the mirror leaves of a run to the archive and the feed publisher.
MIRROR_RESERVE_SECONDS = 10.0
# The inbox's share of the mirror's time when the feed runs too, so that
# neither a big export nor a long feed starves the other.
INBOX_SHARE_WITH_FEED = 0.5


def replay_sent(recovery: dict) -> bool:
    """Whether this run's replay sent the primary any post (a send whose
    answer was lost counts: the post may be there)."""
    replay = recovery.get("replay", {})
    return any(replay.get(name) for name in ("sent", "failed", "retries"))


@dataclass
class MaintenanceReport:
    folded: int = 0
    duplicates_dropped: int = 0
    archived: int = 0
    archive_objects: list[str] = field(default_factory=list)
    # Authors with a spooled post folded in this run: their posts wait for the
    # next run's replay (see Maintenance.run).
    folded_authors: set[str] = field(default_factory=set)
    recovery: dict = field(default_factory=dict)
    feeds: dict = field(default_factory=dict)
    mirror: dict = field(default_factory=dict)
    inbox: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "folded": self.folded,
            "duplicates_dropped": self.duplicates_dropped,
            "archived": self.archived,
            "archive_objects": len(self.archive_objects),
            "recovery": self.recovery,
            "feeds": self.feeds,
            "mirror": self.mirror,
            "inbox": self.inbox,
        }


class Maintenance:
    def __init__(
        self,
        store: PostStore,
        spool: Spool,
        archive: Archive,
        checkpoints: ArchiveCheckpoints,
        settings: Settings,
        recovery: Recovery | None = None,
        clock=time.time,
        publisher: FeedPublisher | None = None,
        mirror: Mirror | None = None,
        backlog_empty: Callable[[], bool] = lambda: True,
        inbox: Inbox | None = None,
        active_shards: active.ActiveShardStore | None = None,
    ) -> None:
        self._visits = active.Visits(active_shards, settings.archive_settle_seconds, settings.write_shards)
        self._mirror = mirror
        self._inbox = inbox
        self._backlog_empty = backlog_empty
        self._store = store
        self._spool = spool
        self._archive = archive
        self._checkpoints = checkpoints
        self._settings = settings
        self._recovery = recovery
        self._clock = clock
        self._publisher = publisher

    def run(self, remaining_seconds: Callable[[], float] = lambda: 60.0) -> MaintenanceReport:
        """Fold the spool first, so spooled posts are replayed too; then
        health check and replay; then the mirror (its S3 inbox, then its
        change feed); then archive; then publish the feeds that changed
        (last: the fold and deletes it follows change them).

        The replay keeps each author's order only if it sees all their
        older posts: it does not start while the spool still holds posts
        (a fold of `SPOOL_FOLD_BATCH` may leave some), and the authors
        folded in this run wait for the next one, because the Backlog index
        may not show their folded posts yet.
        """
        report = MaintenanceReport()
        started_at = self._clock()
        self.fold_spool(report)
        if self._recovery is not None:
            report.recovery = self._recovery.run(remaining_seconds, hold_authors=frozenset(report.folded_authors))
        primary = report.recovery.get("primary")
        if self._mirror is not None and replay_sent(report.recovery):
            self._mirror.note_replay(started_at)
        if self._inbox is not None:
            report.inbox = self.ingest_inbox(remaining_seconds, primary)
        if self._mirror is not None:
            report.mirror = self.mirror(remaining_seconds, primary)
        self.archive_new_posts(report)
        if self._publisher is not None:
            report.feeds = self._publisher.run(remaining_seconds, self._clock()).to_dict()
        return report

    def ingest_inbox(self, remaining_seconds: Callable[[], float], primary: str | None) -> dict:
        """Ingest the S3 inbox whether the primary is up or not (it is what
        an operator pushed), before the feed and with INBOX_SHARE_WITH_FEED
        of the mirror's time if the feed runs after it. Without a feed, this
        marks the outage that the feed would."""
        feed_runs = self._mirror is not None and primary == "up"
        if self._mirror is None and primary not in ("up", "unconfigured"):
            self._inbox.note_outage()
        share = INBOX_SHARE_WITH_FEED if feed_runs else 1.0
        kept = MIRROR_RESERVE_SECONDS + (remaining_seconds() - MIRROR_RESERVE_SECONDS) * (1 - share)
        try:
            return self._inbox.run(lambda: remaining_seconds() - kept).to_dict()
        except Exception as exc:
            # Operator-pushed data, or a policy that denies its prefixes, must
            # not stop the feed, the archive and the feeds behind it.
            logger.exception("mirror inbox failed")
            count("MirrorInboxFailed")
            return {"stop": "error", "error": type(exc).__name__}

    def mirror(self, remaining_seconds: Callable[[], float], primary: str | None) -> dict:
        """Mirror the primary's change feed while it is up (after the replay,
        which matters more), leaving `MIRROR_RESERVE_SECONDS` of the run to
        the archive and the feeds; while it is not up, mark the outage."""
        if primary != "up":
            self._mirror.note_outage()
            return {"skipped": f"primary {primary}"}
        budget = lambda: remaining_seconds() - MIRROR_RESERVE_SECONDS  # noqa: E731 - a budget, read when asked
        return self._mirror.run(budget, self._backlog_empty).to_dict()

    def fold_spool(self, report: MaintenanceReport) -> None:
        """Move spooled posts into DynamoDB, then archive and drop them.

        Order matters: insert (conditional on the id, so a repeat is a
        no-op), archive under a name fixed by the id, and only then delete
        the spool object. A crash between steps repeats them harmlessly.
        """
        for key in self._spool.keys(self._settings.spool_fold_batch):
            post, fingerprint, kept_token = self._spool.read(key)
            report.folded_authors.add(post.author)
            post = post.with_changes(source=SPOOL_SOURCE)
            now = int(self._clock())
            try:
                expires = now + self._settings.idempotency_ttl_seconds
                self._store.fold_spooled(post, fingerprint, expires, now, kept_token)
                report.folded += 1
                count("PostsFolded")
            except DuplicateIdempotencyKey:
                # The same request also reached DynamoDB (a retry after the
                # outage): that copy wins and this one is dropped.
                report.duplicates_dropped += 1
                self._spool.delete(key)
                continue
            except PostExists:
                pass
            stored = self._store.get_post(post.id)
            if stored is not None and stored.source == SPOOL_SOURCE:
                report.archive_objects += self._archive.write([stored], f"{SPOOL_SOURCE}-{stored.id}")
            self._spool.delete(key)

    def archive_new_posts(self, report: MaintenanceReport) -> None:
        """Archive the posts after the checkpoints of the write shards the
        stream noted (`stream.active`; every shard without the notes), as
        one object per hour prefix for the whole run.

        Only posts older than the settle time are taken: a post whose id
        is below the checkpoint must never appear later, and ids are made
        before the write commits. Spooled posts are skipped (the fold
        archived them), so no post is archived twice. The batch is recorded
        (`ArchivePlan`) before it is written: a run that dies before its
        checkpoints move is finished by the next one, same posts, same names.
        """
        now = self._clock()
        before = ids.smallest_ulid_at(int(now * 1000) - self._settings.archive_settle_seconds * 1000)
        resumed = self._checkpoints.plan()
        if resumed is not None:
            self._write_batch(resumed, self._planned_posts(resumed), report)
        visit = self._visits.plan(ARCHIVE_READER, active.POSTS, now)
        posts, ranges, unfinished = self._collect(visit.shards, before, now)
        if ranges:
            plan = self._checkpoints.save_plan(ArchivePlan(batch_name(now, ranges), ranges))
            if plan.ranges != ranges:  # an overlapping run's batch: write it, visit ours again next run
                self._write_batch(plan, self._planned_posts(plan), report)
                return
            self._write_batch(plan, posts, report)
        self._visits.finish(visit, unfinished)

    def _collect(self, shards: list[int], before: str, now: float) -> tuple[list[Post], dict, set[int]]:
        """The settled posts after each shard's checkpoint, each shard's
        range of them, and the shards left with posts to take later (a full
        batch, or posts not settled yet)."""
        until = ids.smallest_ulid_at(int(now * 1000) + 1000)
        limit = self._settings.archive_batch_max
        posts: list[Post] = []
        ranges: dict[int, tuple[str, str]] = {}
        unfinished: set[int] = set()
        for shard in shards:
            checkpoint = self._checkpoints.get(shard)
            found = self._store.posts_between(shard, checkpoint, until, limit)
            taken = [post for post in found if post.id < before]
            if len(found) == limit or len(taken) < len(found):
                unfinished.add(shard)
            if taken:
                ranges[shard] = (checkpoint, taken[-1].id)
                posts.extend(taken)
        return posts, ranges, unfinished

    def _planned_posts(self, plan: ArchivePlan) -> list[Post]:
        limit = self._settings.archive_batch_max
        return [
            post
            for shard, (after, last) in sorted(plan.ranges.items())
            for post in self._store.posts_between(shard, after, just_after(last), limit)
        ]

    def _write_batch(self, plan: ArchivePlan, posts: list[Post], report: MaintenanceReport) -> None:
        fresh = [post for post in posts if post.source != SPOOL_SOURCE]
        if fresh:
            report.archive_objects += self._archive.write(fresh, plan.name)
        for shard, (after, last) in sorted(plan.ranges.items()):
            if self._checkpoints.advance(shard, after, last):
                archived = sum(1 for post in fresh if after < post.id <= last and self._shard(post) == shard)
                report.archived += archived
                count("PostsArchived", archived)
        self._checkpoints.clear_plan(plan)

    def _shard(self, post: Post) -> int:
        return shard_of(post.id, self._settings.write_shards)


def just_after(post_id: str) -> str:
    """Above `post_id` and below every greater id of the same length (an
    exclusive bound that takes `post_id` in)."""
    return post_id + "~"


def batch_name(now: float, ranges: dict[int, tuple[str, str]]) -> str:
    """A run's object name: its minute (readable, sorts in time) and a digest
    of the ranges, which fix its posts (a retry writes the same name)."""
    digest = hashlib.sha256(json.dumps(sorted(ranges.items())).encode()).hexdigest()[:16]
    return f"{time.strftime('%Y%m%dT%H%M', time.gmtime(now))}-{digest}"
