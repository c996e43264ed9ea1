"""What the fake primary holds (posts, deletions, counters, the rate window),
behind one lock, and the checks of an ingest payload."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devtools.fake_primary.changes import ChangeLog
from devtools.fake_primary.mode import Mode

REQUIRED_STRINGS = ("id", "author", "text", "created_at")
COUNTERS = (
    "requests",
    "accepted",
    "idempotent_hits",
    "duplicates",
    "rejected_429",
    "failed_500",
    "timeouts",
    "lost_answers",
    "health_checks",
    "delete_requests",
    "deleted",
    "feed_requests",
)


@dataclass(frozen=True)
class ReceivedPost:
    upstream_id: str
    id: str
    author: str
    text: str
    created_at: str
    in_reply_to: str | None
    idempotency_key: str | None
    received_at: str
    # Made by the author on the primary itself, not replayed by Lifeboat.
    direct: bool = False

    @property
    def created_on_primary(self) -> str:
        """When the primary's change feed says it was created: a direct post
        when written, a replayed one when it arrived."""
        return self.created_at if self.direct else self.received_at

    def answer(self) -> dict:
        """The post as the ingest answers with it."""
        fields = ("author", "text", "created_at", "in_reply_to")
        return {"id": self.upstream_id, **{name: getattr(self, name) for name in fields}}


@dataclass(frozen=True)
class DeletedPost:
    upstream_id: str
    id: str
    author: str
    deleted_at: str


@dataclass(frozen=True)
class RateWindow:
    limit: int
    remaining: int
    reset_seconds: float
    limited: bool


@dataclass(frozen=True)
class Plan:
    """The dice for one request, rolled together under the lock so a seeded
    run makes the same choices in the same request order."""

    mode: Mode
    stall: bool = False
    fail: bool = False
    lose: bool = False
    rate: RateWindow | None = None


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def iso_at(epoch_seconds: float) -> str:
    """UTC with milliseconds and a Z, as Mastodon writes dates."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_payload(payload: object, max_chars: int) -> dict:
    """The ingest body, checked: Rejected(400) for a malformed one,
    Rejected(422) for a well-formed one the primary will not take."""
    if not isinstance(payload, dict):
        raise Rejected(400, "body must be a JSON object")
    for name in REQUIRED_STRINGS:
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise Rejected(400, f"{name} must be a non-empty string")
    if "in_reply_to" not in payload or not isinstance(payload["in_reply_to"], str | None):
        raise Rejected(400, "in_reply_to must be present, a string or null")
    if len(payload["text"]) > max_chars:
        raise Rejected(422, f"text is longer than {max_chars} characters")
    return payload


@dataclass
class PrimaryState:
    """Everything the handlers share, behind one lock."""

    token: str = field(repr=False)
    max_chars: int = 500
    seed: int | None = None
    mode: Mode = field(default_factory=Mode)
    stopping: threading.Event = field(default_factory=threading.Event)
    # The change feed Lifeboat's mirror reads (users, tokens, follows, posts).
    changes: ChangeLog = field(default_factory=ChangeLog)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._clear()

    def _clear(self) -> None:
        self._posts: list[ReceivedPost] = []
        self._deleted: list[DeletedPost] = []
        self._by_key: dict[tuple[str, str], ReceivedPost] = {}
        self._lifeboat_ids: set[str] = set()
        self._upstream_ids: set[str] = set()
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._window_start = 0.0
        self._window_count = 0

    def configure(self, changes: dict) -> Mode:
        with self._lock:
            self.mode = self.mode.updated(changes)
            return self.mode

    def reset(self) -> None:
        with self._lock:
            self._clear()
            self.changes.clear()

    def count(self, name: str) -> None:
        with self._lock:
            self._counters[name] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def received(self) -> list[ReceivedPost]:
        with self._lock:
            return [post for post in self._posts if not post.direct]

    def deleted(self) -> list[DeletedPost]:
        with self._lock:
            return list(self._deleted)

    def delete(self, upstream_id: str) -> bool:
        """Delete the post; False when there is no such post (any more)."""
        with self._lock:
            if upstream_id not in self._upstream_ids:
                return False
            post = next(post for post in self._posts if post.upstream_id == upstream_id)
            self._upstream_ids.discard(upstream_id)
            self.changes.add_post(upstream_id, post.author, "", post.created_on_primary, post.in_reply_to, deleted=True)
            self._deleted.append(DeletedPost(upstream_id, post.id, post.author, iso_at(time.time())))
            self._counters["deleted"] += 1
            return True

    def plan(self, counter: str, ingest: bool) -> Plan:
        with self._lock:
            self._counters[counter] += 1
            mode = self.mode
            stall = self._roll(mode.timeout_rate)
            if not ingest:
                return Plan(mode, stall=stall)
            return Plan(
                mode,
                stall=stall,
                fail=self._roll(mode.fail_rate),
                lose=self._roll(mode.lose_answer_rate),
                rate=self._take_rate_slot(mode.rate_limit),
            )

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _take_rate_slot(self, limit: int) -> RateWindow | None:
        """A fixed one-second window: the first `limit` requests in it pass."""
        if limit <= 0:
            return None
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        limited = self._window_count > limit
        return RateWindow(
            limit=limit,
            remaining=max(limit - self._window_count, 0),
            reset_seconds=self._window_start + 1.0 - now,
            limited=limited,
        )

    def accept(self, payload: dict, key: str | None) -> tuple[ReceivedPost, bool]:
        """Store the post unless (author, key) was seen; return the post
        stored under the key and whether it is new. The lookup and the insert
        share the lock, so concurrent requests with one key store exactly one
        post."""
        with self._lock:
            if key is not None and (payload["author"], key) in self._by_key:
                self._counters["idempotent_hits"] += 1
                return self._by_key[(payload["author"], key)], False
            parent = payload["in_reply_to"]
            if parent is not None and parent not in self._upstream_ids:
                raise Rejected(422, "in_reply_to is not a known post")
            if payload["id"] in self._lifeboat_ids:
                self._counters["duplicates"] += 1
            self._counters["accepted"] += 1
            return self._store(payload, key), True

    def add_direct_post(
        self, author: str, text: str, key: str | None, in_reply_to: str | None = None, created_at: float | None = None
    ) -> str:
        """A post the author made on the primary itself (now, unless
        `created_at` says when); its upstream id."""
        payload = {
            "id": "",
            "author": author,
            "text": text,
            "created_at": iso_at(time.time() if created_at is None else created_at),
            "in_reply_to": in_reply_to,
        }
        with self._lock:
            return self._store(payload, key, direct=True).upstream_id

    def _store(self, payload: dict, key: str | None, direct: bool = False) -> ReceivedPost:
        post = ReceivedPost(
            upstream_id=str(len(self._posts) + 1),
            id=payload["id"],
            author=payload["author"],
            text=payload["text"],
            created_at=payload["created_at"],
            in_reply_to=payload["in_reply_to"],
            idempotency_key=key,
            received_at=iso_at(time.time()),
            direct=direct,
        )
        self._posts.append(post)
        # Every post reaches the feed, those Lifeboat replayed included.
        self.changes.add_post(post.upstream_id, post.author, post.text, post.created_on_primary, post.in_reply_to)
        if not direct:
            self._lifeboat_ids.add(post.id)
        self._upstream_ids.add(post.upstream_id)
        if key is not None:
            self._by_key[(post.author, key)] = post
        return post
