"""An in-memory stand-in for the replay side of `PostStore`.

moto's TransactWriteItems deep-copies the whole table on every call, so a
replay of thousands of posts on moto measures moto, not the replay. This
fake keeps the same contract (tests/functional/test_store_contract.py runs
one suite against both) and lets the benchmark measure pacing against the
primary. Thread-safe, as the replay's workers need.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from chalicelib.core.models import (
    DELETE_FAILED,
    DELETE_PENDING,
    DELETED,
    DELETING,
    FAILED,
    PENDING,
    REPLAYED,
    SENDING,
    UPSTREAM_DELETE_STATES,
    Post,
)
from chalicelib.errors import PostExists
from chalicelib.posts.store import BacklogCounts, StateChanged

_TO_SEND = frozenset({PENDING, SENDING})


class InMemoryPostStore:
    def __init__(self) -> None:
        self._posts: dict[str, Post] = {}
        self._lock = threading.Lock()

    def create_post(self, post: Post, fingerprint: str = "", idempotency_expires_at: int = 0, now: int = 0) -> None:
        with self._lock:
            if post.id in self._posts:
                raise PostExists(post.id)
            self._posts[post.id] = post

    def get_post(self, post_id: str) -> Post | None:
        with self._lock:
            return self._posts.get(post_id)

    def mark_deleted(self, post: Post, deleted_at: str, charge=None) -> None:
        self._move(post.id, {post.state}, None, state=DELETED, deleted_at=deleted_at)

    def queue_upstream_delete(self, post: Post, deleted_at: str, charge=None) -> None:
        self._move(post.id, {REPLAYED}, None, state=DELETE_PENDING, deleted_at=deleted_at)

    def backlog_window(self, per_shard: int) -> list[Post]:
        return self._in_states(_TO_SEND)[:per_shard]

    def upstream_delete_window(self, per_shard: int) -> list[Post]:
        return self._in_states(UPSTREAM_DELETE_STATES)[:per_shard]

    def _in_states(self, states: frozenset[str]) -> list[Post]:
        with self._lock:
            return sorted((p for p in self._posts.values() if p.state in states), key=lambda p: p.id)

    def backlog_size(self) -> int:
        return self.backlog_counts().posts

    def backlog_counts(self) -> BacklogCounts:
        return BacklogCounts(len(self._in_states(_TO_SEND)), len(self._in_states(UPSTREAM_DELETE_STATES)))

    def claim_for_sending(self, post: Post, owner: str, now_iso: str) -> Post:
        return self._claim(post, owner, PENDING, SENDING)

    def claim_for_deleting(self, post: Post, owner: str, now_iso: str) -> Post:
        return self._claim(post, owner, DELETE_PENDING, DELETING)

    def _claim(self, post: Post, owner: str, waiting: str, in_flight: str) -> Post:
        with self._lock:
            current = self._posts.get(post.id)
            if current is None or current.state not in (waiting, in_flight):
                raise StateChanged(post.id)
            claimed = replace(current, state=in_flight, replay_owner=owner, send_attempts=current.send_attempts + 1)
            self._posts[post.id] = claimed
            return claimed

    def mark_replayed(self, post: Post, owner: str, upstream_id: str | None, at: str) -> None:
        self._move(
            post.id, {SENDING}, owner, state=REPLAYED, upstream_id=upstream_id, replayed_at=at, replay_owner=None
        )

    def mark_failed(self, post: Post, owner: str, reason: str, at: str) -> None:
        self._move(post.id, {SENDING}, owner, state=FAILED, failure_reason=reason, failed_at=at, replay_owner=None)

    def mark_deleted_upstream(self, post: Post, owner: str, at: str) -> None:
        self._move(post.id, {DELETING}, owner, state=DELETED, upstream_deleted_at=at, replay_owner=None)

    def mark_delete_failed(self, post: Post, owner: str, reason: str, at: str) -> None:
        changes = {"failure_reason": reason, "failed_at": at, "replay_owner": None}
        self._move(post.id, {DELETING}, owner, state=DELETE_FAILED, **changes)

    def requeue_dead_letter(self, post: Post) -> None:
        waiting = DELETE_PENDING if post.state == DELETE_FAILED else PENDING
        self._move(post.id, {post.state}, None, state=waiting, failure_reason=None, failed_at=None)

    def _move(self, post_id: str, from_states: set[str], owner: str | None, **changes) -> None:
        with self._lock:
            current = self._posts.get(post_id)
            if current is None or current.state not in from_states:
                raise StateChanged(post_id)
            if owner is not None and current.replay_owner != owner:
                raise StateChanged(post_id)
            self._posts[post_id] = replace(current, **changes)
