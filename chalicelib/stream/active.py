"""Which write shards got posts, minute by minute: what lets the scheduled
job touch only those shards instead of all `WRITE_SHARDS`. Pure: no AWS SDK.

The stream consumer notes, for every batch that holds a post that appeared
(made, or folded in from the spool), the post's write shard in the bucket of
the minute it processes the batch (its own clock, not the post's id: a post
folded with an old id lands in a current bucket all the same). Mirrored
posts are noted apart, by their mirror shard. A note is an ADD to a number
set, so a batch delivered again changes nothing, or notes the same shards
in a later bucket (extra work, never less).

A reader (the archiver, the feed publisher) keeps a cursor: the last minute
whose buckets it has read closed (`through`) and the shards it still owes
work to (`carry`). Each run it reads the buckets after `through` up to the
current minute (open ones too: a post is looked for from its first run),
visits those shards and the carried ones, and moves `through` to the last
minute that is closed: over by `close_seconds`, by when every note made in
it has landed and every post noted in it is settled
(ARCHIVE_SETTLE_SECONDS) and shows in the indexes. A shard a visit could
not finish (a full batch, or posts not yet settled for that reader) is
carried. Without a cursor (the first run) every shard is visited once.

Own posts that appeared or disappeared also note their author's kept-token
marker shard (`KEPT`, `accounts.kept_tokens.marker_shard_of`), for the
replay's retirement of kept tokens. A reader may ask for a rolling sweep:
each minute its cursor moves past also visits shard `minute mod shards`,
so every shard is visited at least once per `shards` minutes of progress,
at one more shard a minute (a net for what no note points to).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

POSTS = "posts"
MIRRORED = "mirrored"
KEPT = "kept"
BUCKET_SECONDS = 60
# Notes are spread over this many items per minute, so that even 150,000
# posts/s (1,500 batches/s of 100 records) stay under one item's write rate.
SPLITS = 8
# Buckets read per run: 12 minutes x 8 splits = 96 keys, one BatchGetItem.
MAX_MINUTES_PER_RUN = 12
# How much later than the note's minute a reader may still see it land: a
# consumer's clock skew and its request's retries stay well under this.
LANDING_MARGIN_SECONDS = 60
NOTE_DAYS = 2


def minute_of(seconds: float) -> int:
    return int(seconds // BUCKET_SECONDS)


def split_of(batch_id: str) -> int:
    return int(hashlib.sha256(batch_id.encode()).hexdigest()[:8], 16) % SPLITS


def close_seconds(settle_seconds: int) -> int:
    """How long after its end a minute's bucket is read for the last time."""
    return settle_seconds + LANDING_MARGIN_SECONDS


@dataclass(frozen=True)
class Cursor:
    through: int | None = None  # None: never read (the first visit is of every shard)
    carry: frozenset[int] = frozenset()


class ActiveShardStore(Protocol):
    def note(self, minute: int, split: int, shards: dict[str, set[int]], expires_at: int) -> None: ...

    def buckets(self, minutes: list[int]) -> dict[str, set[int]]: ...

    def cursor(self, reader: str) -> Cursor: ...

    def save_cursor(self, reader: str, cursor: Cursor) -> None: ...


@dataclass(frozen=True)
class Visit:
    """The shards one run of a reader visits, and where its cursor goes once
    they are done (`finish`)."""

    reader: str
    shards: list[int]
    was: Cursor
    through: int


def plan_visit(
    store: ActiveShardStore,
    reader: str,
    kind: str,
    now: float,
    close_after: int,
    all_shards: int,
    rolling: bool = False,
) -> Visit:
    cursor = store.cursor(reader)
    closed = minute_of(now - close_after) - 1  # the last minute whose bucket is closed
    if cursor.through is None:
        return Visit(reader, list(range(all_shards)), cursor, closed)
    first = cursor.through + 1
    last = min(minute_of(now), first + MAX_MINUTES_PER_RUN - 1)
    minutes = list(range(first, last + 1))
    noted = store.buckets(minutes).get(kind, set()) if minutes else set()
    through = max(cursor.through, min(closed, last))
    swept = {minute % all_shards for minute in range(cursor.through + 1, through + 1)} if rolling else set()
    shards = sorted((noted | cursor.carry | swept) & set(range(all_shards)))
    return Visit(reader, shards, cursor, through)


def finish(store: ActiveShardStore, visit: Visit, unfinished: Iterable[int]) -> None:
    """Save the cursor after the visit's work is done (a run that dies
    before this visits the same shards again: every reader's work is
    idempotent). Written only when it moved."""
    moved = Cursor(visit.through, frozenset(unfinished))
    if moved != visit.was:
        store.save_cursor(visit.reader, moved)


def every_shard_visit(reader: str, all_shards: int) -> Visit:
    """A visit of every shard that keeps no cursor (a job wired without the notes)."""
    return Visit(reader, list(range(all_shards)), Cursor(), 0)


class Visits:
    """A reader's visits over a store, or of every shard without one."""

    def __init__(self, store: ActiveShardStore | None, settle_seconds: int, all_shards: int) -> None:
        self._store = store
        self._close_after = close_seconds(settle_seconds)
        self._all = all_shards

    def plan(self, reader: str, kind: str, now: float, rolling: bool = False) -> Visit:
        if self._store is None:
            return every_shard_visit(reader, self._all)
        return plan_visit(self._store, reader, kind, now, self._close_after, self._all, rolling)

    def finish(self, visit: Visit, unfinished: Iterable[int]) -> None:
        if self._store is not None:
            finish(self._store, visit, unfinished)


def noted_shards(
    changes: Iterable, shard: Callable[[str], int], kept_shard: Callable[[str], int] | None = None
) -> dict[str, set[int]]:
    """The shards to note for a batch's post changes: own posts that appeared
    by write shard, mirrored ones by mirror shard (the same function of the
    id); with `kept_shard`, own posts that appeared or disappeared also by
    their author's kept-token marker shard."""
    found: dict[str, set[int]] = {}
    for change in changes:
        if change.appeared:
            found.setdefault(MIRRORED if change.mirrored else POSTS, set()).add(shard(change.post.id))
        if kept_shard is not None and not change.mirrored and (change.appeared or change.disappeared):
            found.setdefault(KEPT, set()).add(kept_shard(change.post.author))
    return found
