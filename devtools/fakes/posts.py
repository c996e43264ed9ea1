"""In-memory stand-ins for the posts' adapters: the two over post items
(the posts side, `posts.store.PostStore`, and the replay side,
`recovery.backlog.BacklogStore`), the S3 spool and the archive checkpoints.

moto's TransactWriteItems deep-copies the whole table on every call, so a
replay of thousands of posts on moto measures moto, not the replay. These
fakes keep the same contracts (tests/functional/test_store_contract.py runs
one suite against both) and let the benchmark measure pacing against the
primary. They share one `PostTable`, as the two adapters share the DynamoDB
table. Thread-safe, as the replay's workers need.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from chalicelib.core.models import (
    DEAD_LETTER_STATES,
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
from chalicelib.errors import PostExists, StateChanged, ValidationFailed
from chalicelib.mirror.state import MirrorState
from chalicelib.posts import public_pages
from chalicelib.posts.archive import Spooled, spool_key
from chalicelib.posts.checkpoints import ArchivePlan
from chalicelib.posts.store import Page
from chalicelib.recovery.backlog import BacklogCounts, BacklogStatus

_TO_SEND = frozenset({PENDING, SENDING})


class PostTable:
    """The posts both fakes read and write, by id."""

    def __init__(self) -> None:
        self.posts: dict[str, Post] = {}
        self.lock = threading.Lock()

    def get(self, post_id: str) -> Post | None:
        with self.lock:
            return self.posts.get(post_id)

    def in_states(self, states: frozenset[str]) -> list[Post]:
        with self.lock:
            return sorted((p for p in self.posts.values() if p.state in states), key=lambda p: p.id)

    def move(self, post_id: str, from_states: set[str], owner: str | None, **changes) -> None:
        """Change a post if it is in one of `from_states` (and, with `owner`,
        claimed by it): the adapters' conditional writes."""
        with self.lock:
            current = self.posts.get(post_id)
            if current is None or current.state not in from_states:
                raise StateChanged(post_id)
            if owner is not None and current.replay_owner != owner:
                raise StateChanged(post_id)
            self.posts[post_id] = replace(current, **changes)


class InMemoryPostStore:
    """The write path and timelines of `PostStore` (no idempotency records,
    rate limits or feed markers: those are other ports' contracts)."""

    def __init__(self, table: PostTable | None = None) -> None:
        self.table = table or PostTable()

    def create_post(
        self,
        post: Post,
        fingerprint: str = "",
        idempotency_expires_at: int = 0,
        now: int = 0,
        charge=None,
        keeping=None,
    ):
        with self.table.lock:
            if post.id in self.table.posts:
                raise PostExists(post.id, self.table.posts[post.id])
            self.table.posts[post.id] = post

    def get_post(self, post_id: str) -> Post | None:
        return self.table.get(post_id)

    def get_shown_post(self, post_id: str) -> Post | None:
        # No account is suspended here: that needs the mirror's user items.
        return self.get_post(post_id)

    def get_posts(self, post_ids: list[str]) -> dict[str, Post]:
        with self.table.lock:
            return {post_id: self.table.posts[post_id] for post_id in post_ids if post_id in self.table.posts}

    def mark_deleted(self, post: Post, deleted_at: str, charge=None) -> None:
        self.table.move(post.id, {post.state}, None, state=DELETED, deleted_at=deleted_at)

    def queue_upstream_delete(self, post: Post, deleted_at: str, charge=None, keeping=None) -> None:
        self.table.move(post.id, {REPLAYED}, None, state=DELETE_PENDING, deleted_at=deleted_at)

    def author_posts(self, author: str, before_id: str | None, limit: int) -> Page:
        return self._newest_first(lambda post: post.author == author, before_id, limit)

    def public_posts(self, before_id: str | None, limit: int) -> Page:
        return self._newest_first(lambda post: True, before_id, limit)

    def _newest_first(self, wanted, before_id: str | None, limit: int) -> Page:
        with self.table.lock:
            live = [p for p in self.table.posts.values() if not p.is_deleted and wanted(p)]
        posts = sorted((p for p in live if before_id is None or p.id < before_id), key=lambda p: p.id, reverse=True)
        return Page(posts[:limit], len(posts) > limit)


class InMemoryBacklogStore:
    """The replay's state machine of `BacklogStore`, over the same posts."""

    def __init__(self, table: PostTable) -> None:
        self.table = table

    def get_post(self, post_id: str) -> Post | None:
        return self.table.get(post_id)

    def backlog_window(self, per_shard: int) -> list[Post]:
        return self.table.in_states(_TO_SEND)[:per_shard]

    def upstream_delete_window(self, per_shard: int) -> list[Post]:
        return self.table.in_states(UPSTREAM_DELETE_STATES)[:per_shard]

    def backlog_size(self) -> int:
        return self.backlog_counts().posts

    def backlog_counts(self) -> BacklogCounts:
        return BacklogCounts(len(self.table.in_states(_TO_SEND)), len(self.table.in_states(UPSTREAM_DELETE_STATES)))

    def oldest_pending(self, limit: int = 1) -> list[Post]:
        return self.table.in_states(_TO_SEND)[:limit]

    def status(self, with_mirror: bool = False) -> BacklogStatus:
        oldest = self.oldest_pending()
        return BacklogStatus(
            self.backlog_counts(),
            self.dead_letter_count(),
            oldest[0].id if oldest else None,
            mirror=MirrorState() if with_mirror else None,
        )

    def settle_oldest(self, status: BacklogStatus) -> str | None:
        return status.oldest_pending_id

    def dead_letters(self, after_id: str | None, limit: int) -> Page:
        posts = [p for p in self.table.in_states(DEAD_LETTER_STATES) if after_id is None or p.id > after_id]
        return Page(posts[:limit], len(posts) > limit)

    def dead_letter_count(self) -> int:
        return len(self.table.in_states(DEAD_LETTER_STATES))

    def claim_for_sending(self, post: Post, owner: str, now_iso: str) -> Post:
        return self._claim(post, owner, PENDING, SENDING)

    def claim_for_deleting(self, post: Post, owner: str, now_iso: str) -> Post:
        return self._claim(post, owner, DELETE_PENDING, DELETING)

    def _claim(self, post: Post, owner: str, waiting: str, in_flight: str) -> Post:
        with self.table.lock:
            current = self.table.posts.get(post.id)
            if current is None or current.state not in (waiting, in_flight):
                raise StateChanged(post.id)
            claimed = replace(current, state=in_flight, replay_owner=owner, send_attempts=current.send_attempts + 1)
            self.table.posts[post.id] = claimed
            return claimed

    def mark_replayed(self, post: Post, owner: str, upstream_id: str | None, at: str) -> None:
        changes = {"upstream_id": upstream_id, "replayed_at": at, "replay_owner": None}
        self.table.move(post.id, {SENDING}, owner, state=REPLAYED, **changes)

    def release_claim(self, post: Post, owner: str) -> None:
        in_flight, waiting = (DELETING, DELETE_PENDING) if post.awaits_upstream_delete else (SENDING, PENDING)
        current = self.table.posts.get(post.id)
        attempts = current.send_attempts - 1 if current else 0
        # Only the owning run (one at a time, by the lease) moves its claim.
        self.table.move(post.id, {in_flight}, owner, state=waiting, replay_owner=None, send_attempts=attempts)

    def claim_many_for_sending(self, posts: list[Post], owner: str, now_iso: str) -> set[str]:
        return _each(posts, lambda post: self.claim_for_sending(post, owner, now_iso))

    def mark_many_replayed(self, sent: list[tuple[Post, str | None]], owner: str, at: str) -> set[str]:
        upstream_ids = {post.id: upstream_id for post, upstream_id in sent}
        return _each(
            [post for post, _ in sent], lambda post: self.mark_replayed(post, owner, upstream_ids[post.id], at)
        )

    def mark_failed(self, post: Post, owner: str, reason: str, at: str) -> None:
        changes = {"failure_reason": reason, "failed_at": at, "replay_owner": None}
        self.table.move(post.id, {SENDING}, owner, state=FAILED, **changes)

    def mark_deleted_upstream(self, post: Post, owner: str, at: str) -> None:
        self.table.move(post.id, {DELETING}, owner, state=DELETED, upstream_deleted_at=at, replay_owner=None)

    def mark_delete_failed(self, post: Post, owner: str, reason: str, at: str) -> None:
        changes = {"failure_reason": reason, "failed_at": at, "replay_owner": None}
        self.table.move(post.id, {DELETING}, owner, state=DELETE_FAILED, **changes)

    def requeue_dead_letter(self, post: Post) -> None:
        waiting = DELETE_PENDING if post.state == DELETE_FAILED else PENDING
        self.table.move(post.id, {post.state}, None, state=waiting, failure_reason=None, failed_at=None)


def _each(posts: list[Post], transition) -> set[str]:
    """A batched transition as the DynamoDB store's: each post's on its own;
    the ids of those whose state had changed."""
    changed = set()
    for post in posts:
        try:
            transition(post)
        except StateChanged:
            changed.add(post.id)
    return changed


def in_memory_stores() -> tuple[InMemoryPostStore, InMemoryBacklogStore]:
    """A posts store and a backlog store over the same posts."""
    posts = InMemoryPostStore()
    return posts, InMemoryBacklogStore(posts.table)


class InMemorySpool:
    """`posts.archive.Spool`: one document per spooled post, under the
    same key, so a retry with the same Idempotency-Key finds the first."""

    def __init__(self) -> None:
        self._documents: dict[str, Spooled] = {}
        self._lock = threading.Lock()

    def put(self, post: Post, fingerprint: str, kept_token=None) -> Post:
        with self._lock:
            spooled = self._documents.setdefault(spool_key(post), Spooled(post, fingerprint, kept_token))
        if spooled[1] != fingerprint:
            raise ValidationFailed(
                "this Idempotency-Key was already used for a different post", code="idempotency_key_reused"
            )
        return spooled[0]

    def keys(self, limit: int) -> list[str]:
        with self._lock:
            return sorted(self._documents)[:limit]

    def read(self, key: str) -> Spooled:
        with self._lock:
            return self._documents[key]

    def delete(self, key: str) -> None:
        with self._lock:
            self._documents.pop(key, None)


class InMemoryArchiveCheckpoints:
    """`posts.checkpoints.ArchiveCheckpoints`: each shard's last archived id."""

    def __init__(self) -> None:
        self._last_ids: dict[int, str] = {}
        self._plan: ArchivePlan | None = None
        self._lock = threading.Lock()

    def get(self, shard: int) -> str:
        with self._lock:
            return self._last_ids.get(shard, "")

    def advance(self, shard: int, old: str, new: str) -> bool:
        with self._lock:
            if self._last_ids.get(shard, "") != old:
                return False
            self._last_ids[shard] = new
            return True

    def plan(self) -> ArchivePlan | None:
        with self._lock:
            return self._plan

    def save_plan(self, plan: ArchivePlan) -> ArchivePlan:
        with self._lock:
            if self._plan is None:
                self._plan = plan
            return self._plan

    def clear_plan(self, plan: ArchivePlan) -> None:
        with self._lock:
            if self._plan is not None and self._plan.name == plan.name:
                self._plan = None


class InMemoryPublicPages:
    """`posts.public_store.PublicPages`: the public timeline's chunks, by
    key, each a union of the ids added to it."""

    def __init__(self) -> None:
        self._chunks: dict[str, public_pages.Chunk] = {}
        self._lock = threading.Lock()

    def add(self, chunks: list[public_pages.Chunk]) -> None:
        with self._lock:
            for chunk in chunks:
                stored = self._chunks.setdefault(chunk.sk, public_pages.Chunk(chunk.sk))
                stored.own |= chunk.own
                stored.mirrored |= chunk.mirrored

    def refs(self, window: public_pages.Window, want: int) -> tuple[list[public_pages.Ref], bool]:
        with self._lock:
            lane = public_pages.LaneRead(sorted(self._chunks.values(), key=lambda chunk: chunk.sk), exhausted=True)
        refs, _ = public_pages.settled(window, [lane])
        return refs, False
