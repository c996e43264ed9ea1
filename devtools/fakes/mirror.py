"""An in-memory stand-in for `MirrorStore` (tests/functional/
test_mirror_store_contract.py holds it to the DynamoDB adapter)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from chalicelib.accounts.store import PRIMARY_SOURCE, Grant
from chalicelib.core.clock import iso_at
from chalicelib.core.models import Post
from chalicelib.mirror import layout
from chalicelib.mirror.changes import UNTOLD, AccountChange, CredentialChange, FollowChange, PostChange
from chalicelib.mirror.inbox import (
    DONE_PREFIX,
    INBOX_PREFIX,
    REASON_SUFFIX,
    REJECTED_PREFIX,
    InboxObject,
    ObjectChanged,
)
from chalicelib.mirror.state import InboxPosition, MirrorState, Progress
from chalicelib.mirror.store import FollowGraph, MirroredAccount, PostsApplied, follow_through
from chalicelib.upstream.port import FeedAnswer, FeedOutcome


class InMemoryMirrorStore:
    def __init__(self, follows: FollowGraph) -> None:
        self._follows = follows
        self._accounts: dict[str, AccountChange] = {}
        self._grants: dict[str, Grant] = {}
        self._posts: dict[str, Post] = {}
        self.replayed: set[str] = set()  # UPSTREAM# markers, as the replay writes them
        self._lock = threading.Lock()

    def apply_account(self, change: AccountChange) -> bool:
        """As the adapter: an untold field keeps what was stored."""
        with self._lock:
            earlier = self._accounts.get(change.username)
            kept = {
                name: getattr(earlier, name) if earlier is not None else default
                for name, default in (("suspended", False), ("password_bcrypt", None))
                if getattr(change, name) is UNTOLD
            }
            self._accounts[change.username] = replace(change, **kept)
            return earlier is None

    def account(self, username: str) -> MirroredAccount | None:
        change = self._accounts.get(username)
        if change is None:
            return None
        return MirroredAccount(
            change.username, change.display_name, change.created_at, change.suspended, bool(change.password_bcrypt)
        )

    def suspended(self, username: str) -> bool:
        change = self._accounts.get(username)
        return change is not None and change.suspended

    def password_hash(self, username: str) -> str | None:
        change = self._accounts.get(username)
        return change.password_bcrypt if change is not None else None

    def apply_credentials(self, changes: list[CredentialChange]) -> int:
        with self._lock:
            for change in changes:
                if change.revoked:
                    self._grants.pop(change.token_sha256, None)
                else:
                    self._grants[change.token_sha256] = Grant(change.username, change.scopes, PRIMARY_SOURCE)
        return -(-len({change.token_sha256 for change in changes}) // 25)

    def grant(self, token_sha256: str) -> Grant | None:
        return self._grants.get(token_sha256)

    def apply_follow(self, change: FollowChange, created_at: str) -> bool:
        return follow_through(self._follows, change, created_at)

    def apply_posts(self, changes: list[PostChange], retention_days: int, *, check_ours: bool = True) -> PostsApplied:
        latest = {change.upstream_id: change for change in changes}
        stored = deleted = ours = 0
        with self._lock:
            for change in latest.values():
                if check_ours and change.upstream_id in self.replayed:
                    ours += 1
                    continue
                post_id = layout.mirrored_post_id(change.created_at, change.upstream_id)
                if change.deleted:
                    self._posts.pop(post_id, None)
                    deleted += 1
                else:
                    record = layout.mirrored_post_record(change, post_id, retention_days)
                    self._posts[post_id] = Post.from_record(record)
                    stored += 1
        return PostsApplied(stored, deleted, ours)

    def post(self, post_id: str) -> Post | None:
        return self._posts.get(post_id)


class InMemoryMirrorState:
    """The mirror's one item, in memory (held to `MirrorStateStore` by
    tests/functional/test_mirror_store_contract.py)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._state = MirrorState()
        self._clock = clock
        self._lock = threading.Lock()

    def load(self) -> MirrorState:
        return self._state

    def record(self, progress: Progress, inbox: InboxPosition | None = None) -> None:
        with self._lock:
            feed_page = progress.cursor is not None
            self._state = replace(
                self._state,
                cursor=progress.cursor if feed_page else self._state.cursor,
                cursor_at=progress.reached_end_at or self._state.cursor_at,
                accounts=self._state.accounts + progress.accounts,
                posts=self._state.posts + progress.posts,
                malformed=self._state.malformed + progress.malformed,
                version=self._state.version + (1 if progress.changed else 0),
                changed_at=iso_at(self._clock()) if progress.changed else self._state.changed_at,
                last_error=None if feed_page else self._state.last_error,
                inbox=inbox or self._state.inbox,
            )

    def inbox_done(self) -> None:
        with self._lock:
            self._state = replace(self._state, inbox=None)

    def record_error(self, error: str) -> None:
        with self._lock:
            self._state = replace(self._state, last_error=error[:500])

    def note_outage(self, began_at: str) -> None:
        with self._lock:
            if self._state.outage_began_at is None:
                self._state = replace(self._state, outage_began_at=began_at)

    def note_replay(self, since: str, replayed_at: str) -> None:
        with self._lock:
            began = self._state.outage_began_at or since
            self._state = replace(self._state, outage_began_at=began, last_replay_at=replayed_at)

    def outage_over(self) -> None:
        with self._lock:
            self._state = replace(self._state, outage_began_at=None, last_replay_at=None)


class ScriptedChangeFeed:
    """A change feed over a list of change documents, paged by position,
    with faults queued in front of the next answers (`fail_next`)."""

    def __init__(self, changes: list | None = None) -> None:
        self.changes = list(changes or [])
        self.faults: list[FeedAnswer] = []
        self.requests: list[tuple[str | None, int]] = []

    def fail_next(self, *answers: FeedAnswer) -> None:
        self.faults.extend(answers)

    def fetch(self, after: str | None, limit: int) -> FeedAnswer:
        self.requests.append((after, limit))
        if self.faults:
            return self.faults.pop(0)
        start = int(after or 0)
        page = self.changes[start : start + limit]
        end = start + len(page)
        return FeedAnswer(FeedOutcome.PAGE, changes=page, next=str(end), more=end < len(self.changes))


class InMemoryInboxBucket:
    """The bucket's `mirror/` prefixes in memory (held to `S3InboxBucket`
    by tests/functional/test_inbox_bucket_contract.py). `chunk_bytes` is
    small by default, so lines straddle chunks as they do on S3."""

    def __init__(self, chunk_bytes: int = 7) -> None:
        self.objects: dict[str, bytes] = {}
        self._chunk_bytes = chunk_bytes
        self.reads: list[tuple[str, int]] = []  # (key, offset) of each read begun

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def list(self, limit: int) -> list[InboxObject]:
        # S3's MaxKeys counts folder markers below the inbox's own.
        keys = sorted(key for key in self.objects if key.startswith(INBOX_PREFIX) and key != INBOX_PREFIX)[:limit]
        return [InboxObject(key, len(self.objects[key]), _etag(self.objects[key])) for key in keys if key[-1] != "/"]

    def chunks(self, obj: InboxObject, offset: int) -> Iterator[bytes]:
        if offset >= obj.size:
            return
        body = self._current(obj)
        self.reads.append((obj.key, offset))
        for start in range(offset, len(body), self._chunk_bytes):
            yield body[start : start + self._chunk_bytes]

    def move_to_done(self, obj: InboxObject) -> bool:
        return self._move(obj, DONE_PREFIX)

    def reject(self, obj: InboxObject, reason: dict) -> None:
        self.objects[f"{REJECTED_PREFIX}{obj.name}{REASON_SUFFIX}"] = json.dumps(reason).encode()
        self._move(obj, REJECTED_PREFIX)

    def _move(self, obj: InboxObject, prefix: str) -> bool:
        try:
            body = self._current(obj)
        except ObjectChanged:
            return False
        self.objects[f"{prefix}{obj.name}"] = body
        del self.objects[obj.key]
        return True

    def _current(self, obj: InboxObject) -> bytes:
        body = self.objects.get(obj.key)
        if body is None or _etag(body) != obj.etag:
            raise ObjectChanged(obj.key)
        return body


def _etag(body: bytes) -> str:
    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
