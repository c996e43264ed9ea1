"""In-memory stand-in for the stream consumer's store (`stream.store.StreamStore`):
claims, the status counts, the feed markers it moves and the dirty feeds,
the oldest pending post, and the rate limit's post windows. tests/functional/test_stream_store_contract.py
runs one suite against both."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from chalicelib.posts.items import shard_of
from chalicelib.stream.active import Cursor
from chalicelib.stream.effects import COUNTED_STATES, Effects, FeedLane
from chalicelib.stream.store import AlreadyApplied, Run, StreamStatus


@dataclass
class MarkerState:
    version: int = 0
    changed_at: str | None = None
    last_post_id: str | None = None
    last_deleted_id: str | None = None
    posts_count: int = 0

    def move(self, lane: FeedLane, changed_at: str) -> None:
        self.version += lane.changes
        if lane.changes:
            self.changed_at = changed_at
        self.last_post_id = lane.last_added or self.last_post_id
        self.last_deleted_id = lane.last_deleted or self.last_deleted_id


@dataclass
class InMemoryStreamStore:
    shards: int = 4
    claims: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_STATES, 0))
    public: MarkerState = field(default_factory=MarkerState)
    users: dict[str, MarkerState] = field(default_factory=dict)
    dirty: dict[int, set[str]] = field(default_factory=dict)
    oldest_id: str | None = None
    stale: bool = False
    post_windows: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, run: Run, effects: Effects, changed_at: str, now: int) -> None:
        with self._lock:
            if self.claims.get(run.claim_id, 0) != run.applied or (run.applied == 0 and run.claim_id in self.claims):
                raise AlreadyApplied(self.claims[run.claim_id])
            self.claims[run.claim_id] = run.records
            for name, delta in effects.counts.items():
                self.counts[name] += delta
            self.public.move(effects.public, changed_at)
            for author, effect in effects.authors.items():
                user = self.users.setdefault(author, MarkerState())
                user.move(effect.lane, changed_at)
                user.posts_count += effect.posts
            for author, post_id in effects.deleted:
                self.dirty.setdefault(shard_of(post_id, self.shards), set()).add(author)

    def count_posts(self, windows: dict[tuple[str, int], set[str]]) -> None:
        with self._lock:
            for window, tags in windows.items():
                self.post_windows.setdefault(window, set()).update(tags)

    def oldest(self) -> tuple[str | None, bool]:
        with self._lock:
            return self.oldest_id, self.stale

    def lower_oldest(self, post_id: str) -> None:
        with self._lock:
            if self.oldest_id is None or self.oldest_id > post_id:
                self.oldest_id = post_id

    def mark_oldest_left(self, post_ids: list[str]) -> None:
        with self._lock:
            if self.oldest_id in post_ids:
                self.stale = True

    def replace_stale_oldest(self, stale_id: str, oldest_id: str | None) -> bool:
        with self._lock:
            if not (self.stale and self.oldest_id == stale_id):
                return False
            self.oldest_id, self.stale = oldest_id, False
            return True

    def status(self) -> StreamStatus:
        with self._lock:
            return StreamStatus(
                pending=max(0, self.counts["pending"]),
                deletes=max(0, self.counts["deletes"]),
                dead_letters=max(0, self.counts["dead_letters"]),
                oldest_pending_id=self.oldest_id,
                oldest_stale=self.stale,
            )


@dataclass
class InMemoryActiveShards:
    """The in-memory `stream.active.ActiveShardStore`:
    tests/functional/test_active_shards_contract.py runs one suite on both."""

    notes: dict[tuple[int, int], dict[str, set[int]]] = field(default_factory=dict)
    cursors: dict[str, Cursor] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, minute: int, split: int, shards: dict[str, set[int]], expires_at: int) -> None:
        with self._lock:
            bucket = self.notes.setdefault((minute, split), {})
            for kind, found in shards.items():
                if found:
                    bucket.setdefault(kind, set()).update(found)

    def buckets(self, minutes: list[int]) -> dict[str, set[int]]:
        with self._lock:
            found: dict[str, set[int]] = {}
            for (minute, _), bucket in self.notes.items():
                if minute in minutes:
                    for kind, shards in bucket.items():
                        found.setdefault(kind, set()).update(shards)
            return found

    def cursor(self, reader: str) -> Cursor:
        with self._lock:
            return self.cursors.get(reader, Cursor())

    def save_cursor(self, reader: str, cursor: Cursor) -> None:
        with self._lock:
            self.cursors[reader] = cursor
