"""The stream consumer: one Lambda invocation's batch of records, applied.

Its ports are small Protocols: the derived items' store
(`stream.store.StreamStore`) and the home timelines' fan-out (another
feature's service; a no-op until one is wired). docs/DESIGN.md ("The
stream") argues why each effect holds under redelivery and reordering.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from chalicelib.accounts.kept_tokens import marker_shard_of
from chalicelib.core.clock import iso_at
from chalicelib.core.models import Post
from chalicelib.posts.items import shard_of
from chalicelib.posts.public_pages import Chunk, chunks_of
from chalicelib.stream import active
from chalicelib.stream.changes import FollowChange, PostChange, decode, decode_follows
from chalicelib.stream.effects import Effects, chunks, effects_of
from chalicelib.stream.post_windows import PostWindowTags, posts_by_window
from chalicelib.stream.store import AlreadyApplied, Run

# A claim read back tells how far an earlier delivery got; a third surprise
# in a row means something else writes the claim: fail the batch, Lambda
# delivers it again.
_CLAIM_ATTEMPTS = 3


class HomeFanout(Protocol):
    """Home timelines written on post (fan-out on write): called for every
    post that appears or disappears, own and mirrored, and every follow made
    or undone, at least once and in each item's own order (a post's, an
    edge's), in no order across items. Must be idempotent."""

    def on_post_created(self, post: Post) -> None: ...

    def on_post_deleted(self, post: Post) -> None: ...

    def on_followed(self, follower: str, followee: str) -> None: ...

    def on_unfollowed(self, follower: str, followee: str) -> None: ...


class NoHomeFanout:
    """Home timelines merged at read: nothing to fan out."""

    def on_post_created(self, post: Post) -> None:
        return None

    def on_post_deleted(self, post: Post) -> None:
        return None

    def on_followed(self, follower: str, followee: str, *, settles: bool = False) -> None:
        return None

    def on_unfollowed(self, follower: str, followee: str) -> None:
        return None


class PublicTimeline(Protocol):
    """The public timeline's chunks (`posts.public_pages`): a union, so
    adding the same posts again changes nothing."""

    def add_public(self, chunks: list[Chunk]) -> None: ...


class NoPublicTimeline:
    """Public pages read from elsewhere (a consumer tested on counts only)."""

    def add_public(self, chunks: list[Chunk]) -> None:
        return None


class DerivedStore(Protocol):
    def apply(self, run: Run, effects: Effects, changed_at: str, now: int) -> None: ...

    def oldest(self) -> tuple[str | None, bool]: ...

    def lower_oldest(self, post_id: str) -> None: ...

    def mark_oldest_left(self, post_ids: list[str]) -> None: ...

    def count_posts(self, windows: PostWindowTags) -> None: ...


@dataclass
class StreamReport:
    records: int = 0
    changes: int = 0
    runs_applied: int = 0
    runs_seen_before: int = 0

    def to_dict(self) -> dict:
        return dict(vars(self))


class StreamConsumer:
    def __init__(
        self,
        store: DerivedStore,
        home: HomeFanout | None = None,
        clock=time.time,
        *,
        public: PublicTimeline | None = None,
        counts_posts: bool = True,
        active_shards: active.ActiveShardStore | None = None,
        write_shards: int = 1,
        notes_kept_tokens: bool = False,
    ) -> None:
        """`counts_posts`: count posts per author and minute for the rate
        limit (off when POSTS_PER_MINUTE is 0: nothing reads them).
        `notes_kept_tokens`: note the authors' kept-token marker shards too
        (a Mastodon primary's: nothing else keeps tokens)."""
        self._store = store
        self._home = home or NoHomeFanout()
        self._clock = clock
        self._public = public or NoPublicTimeline()
        self._counts_posts = counts_posts
        self._active = active_shards
        self._write_shards = write_shards
        self._kept_shard = (lambda author: marker_shard_of(author, write_shards)) if notes_kept_tokens else None

    def handle(self, records: list[dict]) -> StreamReport:
        """Apply a batch (Lambda's `Records`). Any exception fails the whole
        batch, which Lambda then delivers again: every step is safe to repeat."""
        changes = decode(records)
        report = StreamReport(records=len(records), changes=len(changes))
        self._note_active(changes)
        for run in chunks(changes):
            if self._apply_run(run):
                report.runs_applied += 1
            else:
                report.runs_seen_before += 1
        self._track_oldest(changes)
        self._public.add_public(public_chunks(changes))
        self._count_posts(changes)
        self._fan_out(changes)
        self._follow_edges(decode_follows(records))
        return report

    def _apply_run(self, changes: list[PostChange]) -> bool:
        """The run's counts and markers, once: False if an earlier delivery
        had applied all of it."""
        run = Run(changes[0].event_id, changes[0].post.id, len(changes))
        for _ in range(_CLAIM_ATTEMPTS):
            effects = effects_of(changes[run.applied :])
            if effects.is_empty:
                return run.applied == 0
            now = self._clock()
            try:
                self._store.apply(run, effects, iso_at(now), int(now))
                return True
            except AlreadyApplied as claimed:
                if claimed.records >= run.records:
                    return False
                run = Run(run.claim_id, run.first_post_id, run.records, claimed.records)
        raise RuntimeError(f"the claim of run {run.claim_id} keeps moving")

    def _track_oldest(self, changes: list[PostChange]) -> None:
        """Idempotent (a min, and a flag), so outside the claimed runs. One
        read first: most batches change neither (the backlog's oldest post
        is older than every new one, and stays), and a read costs less than
        a conditional write that fails. The writes keep their conditions:
        the read only spares them."""
        effects = effects_of(changes)
        if not (effects.entered_backlog or effects.left_backlog):
            return
        recorded, stale = self._store.oldest()
        entered = min(effects.entered_backlog, default=None)
        if entered is not None and (recorded is None or entered < recorded):
            self._store.lower_oldest(entered)
            recorded, stale = entered, False
        if recorded in effects.left_backlog and not stale:
            self._store.mark_oldest_left(effects.left_backlog)

    def _count_posts(self, changes: list[PostChange]) -> None:
        """The rate limit's windows: string sets, idempotent, so outside
        the claimed runs (`stream.post_windows`)."""
        windows = posts_by_window(changes) if self._counts_posts else {}
        if windows:
            self._store.count_posts(windows)

    def _note_active(self, changes: list[PostChange]) -> None:
        """The write shards that got posts, and the kept-token marker shards
        of their authors, for the scheduled job (`stream.active`): one ADD
        to sets, so safe to repeat; first, so a batch that fails later has
        noted them all the same."""
        if self._active is None:
            return
        shards = active.noted_shards(
            changes,
            lambda post_id: shard_of(post_id, self._write_shards),
            self._kept_shard,
        )
        if shards:
            now = self._clock()
            split = active.split_of(changes[0].event_id)
            self._active.note(active.minute_of(now), split, shards, int(now) + active.NOTE_DAYS * 86_400)

    def _fan_out(self, changes: list[PostChange]) -> None:
        for change in changes:
            if change.appeared:
                self._home.on_post_created(change.post)
            elif change.disappeared:
                self._home.on_post_deleted(change.before)

    def _follow_edges(self, changes: list[FollowChange]) -> None:
        for change in changes:
            if change.followed:
                self._home.on_followed(change.follower, change.followee, settles=change.home_pending)
            else:
                self._home.on_unfollowed(change.follower, change.followee)


def public_chunks(changes: list[PostChange]) -> list[Chunk]:
    """The public timeline's share of a batch: every post that appeared,
    own or mirrored, by bucket (`posts.public_pages`)."""
    return chunks_of((change.event_id, change.post.id, change.mirrored) for change in changes if change.appeared)
