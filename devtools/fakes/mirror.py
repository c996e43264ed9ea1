"""An in-memory stand-in for `MirrorStore` (tests/functional/
test_mirror_store_contract.py holds it to the DynamoDB adapter)."""

from __future__ import annotations

import threading
from dataclasses import replace

from chalicelib.accounts.store import PRIMARY_SOURCE, Grant
from chalicelib.core.models import Post
from chalicelib.mirror import layout
from chalicelib.mirror.changes import AccountChange, CredentialChange, FollowChange, PostChange
from chalicelib.mirror.state import MirrorState, Progress
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
        with self._lock:
            new = change.username not in self._accounts
            self._accounts[change.username] = change
            return new

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

    def __init__(self) -> None:
        self._state = MirrorState()
        self._lock = threading.Lock()

    def load(self) -> MirrorState:
        return self._state

    def record(self, progress: Progress) -> None:
        with self._lock:
            self._state = replace(
                self._state,
                cursor=progress.cursor,
                cursor_at=progress.reached_end_at or self._state.cursor_at,
                accounts=self._state.accounts + progress.accounts,
                posts=self._state.posts + progress.posts,
                malformed=self._state.malformed + progress.malformed,
                version=self._state.version + (1 if progress.changed else 0),
                last_error=None,
            )

    def record_error(self, error: str) -> None:
        with self._lock:
            self._state = replace(self._state, last_error=error[:500])

    def note_outage(self, began_at: str) -> None:
        with self._lock:
            if self._state.outage_began_at is None:
                self._state = replace(self._state, outage_began_at=began_at)

    def outage_over(self) -> None:
        with self._lock:
            self._state = replace(self._state, outage_began_at=None)


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
