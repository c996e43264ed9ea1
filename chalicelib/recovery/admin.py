"""The operators' and clients' reads of recovery: /status, the dead
letters (listed and put back in the backlog), and the dry-run plan of
what a replay would send, in order. None of them sends anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chalicelib.core import ids
from chalicelib.core.clock import iso_at
from chalicelib.core.models import Post
from chalicelib.core.pagination import decode_cursor, encode_cursor, parse_limit
from chalicelib.errors import Conflict, NotFound, StateChanged
from chalicelib.recovery.replay import ReplayReport, StopReason
from chalicelib.recovery.schedule import mode_for, next_window

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from chalicelib.mirror.state import MirrorState
    from chalicelib.posts.store import Page
    from chalicelib.recovery.backlog import BacklogStatus
    from chalicelib.recovery.health import HealthState


class AdminStore(Protocol):
    """The backlog's reads and the dead-letter requeue
    (`recovery.backlog.BacklogStore`)."""

    def get_post(self, post_id: str) -> Post | None: ...

    def status(self, with_mirror: bool = False) -> BacklogStatus: ...

    def dead_letters(self, after_id: str | None, limit: int) -> Page: ...

    def requeue_dead_letter(self, post: Post) -> None: ...

    def backlog_window(self, per_shard: int) -> list[Post]: ...

    def upstream_delete_window(self, per_shard: int) -> list[Post]: ...


class HealthReader(Protocol):
    def load(self) -> HealthState: ...


class RecoveryAdmin:
    def __init__(
        self,
        store: AdminStore,
        health: HealthReader,
        settings: Settings,
        wall_clock=time.time,
        mirror_status: Callable[[MirrorState], dict] | None = None,
    ) -> None:
        self._mirror_status = mirror_status
        self._store = store
        self._health = health
        self._settings = settings
        self._wall_clock = wall_clock

    def status(self) -> dict:
        """GET /status: what clients need to decide when to switch back. Two
        reads, whatever WRITE_SHARDS is: the stream's counts (with the
        mirror's state) in one BatchGetItem, and the health item."""
        reading = self._store.status(with_mirror=self._mirror_status is not None)
        backlog = reading.counts
        health = self._health.load()
        oldest = reading.oldest_pending_id if backlog.posts else None
        return {
            "mode": mode_for(health.state, backlog.posts + backlog.upstream_deletes),
            "backlog": backlog.posts,
            "upstream_deletes": backlog.upstream_deletes,
            "oldest_pending_at": ids.iso_from_millis(ids.ulid_millis(oldest)) if oldest else None,
            "dead_letters": reading.dead_letters,
            **health.to_public(),
            "primary_public_url": self._settings.primary_public_url,
            **({"mirror": self._mirror_status(reading.mirror)} if self._mirror_status else {}),
        }

    def dead_letters(self, cursor: str | None, limit: str | None) -> dict:
        size = parse_limit(limit, self._settings.default_page_size, self._settings.max_page_size)
        page = self._store.dead_letters(decode_cursor(cursor), size)
        return {
            "dead_letters": [_dead_letter(post) for post in page.posts],
            "next_cursor": encode_cursor(page.posts[-1].id) if page.has_more else None,
        }

    def retry_dead_letter(self, post_id: str) -> dict:
        """Put a dead letter back in the backlog, in its original place."""
        post = self._store.get_post(post_id) if ids.is_ulid(post_id) else None
        if post is None or not post.is_dead_letter:
            raise NotFound(f"no dead letter {post_id}", code="dead_letter_not_found")
        try:
            self._store.requeue_dead_letter(post)
        except StateChanged as exc:
            raise Conflict("the post changed meanwhile; reload it", code="post_busy") from exc
        return self._store.get_post(post_id).to_public()

    def replay_plan(self) -> dict:
        """POST /admin/replay?dry_run=true: what the next window would send
        (or delete upstream), in order; nothing is claimed or sent."""
        report = ReplayReport(started=iso_at(self._wall_clock()), dry_run=True)
        report.would_send = [
            _planned(post) for post in next_window(self._store, self._settings.replay_window_per_shard)
        ]
        report.stopped_because = StopReason.DRY_RUN
        report.finished = iso_at(self._wall_clock())
        return {"primary": self._health.load().state, **report.to_dict()}


def _dead_letter(post: Post) -> dict:
    return {**post.to_public(), "failure_reason": post.failure_reason, "failed_at": post.failed_at}


def _planned(post: Post) -> dict:
    return {
        "id": post.id,
        "author": post.author,
        "created_at": post.created_at,
        "in_reply_to": post.in_reply_to,
        "action": "delete" if post.awaits_upstream_delete else "send",
    }
