"""The fake primary's change feed for Lifeboat's mirror: every account,
token, follow and post it holds as a change document, in commit order,
including the posts it received through ingest; and faults queued on the
feed (a 429 with Retry-After, a 503, dying mid-page)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

MAX_LIMIT = 500


@dataclass(frozen=True)
class FeedFault:
    status: int = 0  # 429, 500, 503; 0 with `die_mid_page` for a cut answer
    retry_after: int | None = None
    die_mid_page: bool = False


class ChangeLog:
    """Append-only, thread-safe. Cursors are positions, as opaque strings."""

    def __init__(self) -> None:
        self._changes: list[object] = []
        self._faults: list[FeedFault] = []
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._changes.clear()
            self._faults.clear()

    def append(self, *changes: object) -> None:
        """Any documents, malformed ones and duplicates included (hostile feeds)."""
        with self._lock:
            self._changes.extend(changes)

    def add_user(
        self,
        username: str,
        display_name: str,
        created_at: str,
        suspended: bool = False,
        password_bcrypt: str | None = None,
    ) -> None:
        self.append(
            {
                "type": "account",
                "username": username,
                "display_name": display_name,
                "created_at": created_at,
                "suspended": suspended,
                "password_bcrypt": password_bcrypt,
            }
        )

    def add_token(self, username: str, token: str, scopes: str, revoked: bool = False) -> str:
        """The token's SHA-256 digest: all the feed (and the caller) gets."""
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        self.append(
            {"type": "credential", "username": username, "token_sha256": digest, "scopes": scopes, "revoked": revoked}
        )
        return digest

    def add_follow(self, follower: str, followee: str, active: bool = True) -> None:
        self.append({"type": "follow", "follower": follower, "followee": followee, "active": active})

    def add_post(
        self, upstream_id: str, author: str, text: str, created_at: str, in_reply_to: str | None, deleted: bool = False
    ) -> None:
        self.append(
            {
                "type": "post",
                "id": upstream_id,
                "author": author,
                "text": text,
                "created_at": created_at,
                "in_reply_to": in_reply_to,
                "deleted": deleted,
            }
        )

    def add_faults(self, faults: list[FeedFault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def next_fault(self) -> FeedFault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def page(self, after: str | None, limit: int) -> dict:
        """`{"changes", "next", "more"}` after the cursor; a cursor that is
        not one of ours starts from the beginning (overlap, never a gap)."""
        start = int(after) if after and after.isdigit() else 0
        limit = max(1, min(limit, MAX_LIMIT))
        with self._lock:
            changes = self._changes[start : start + limit]
            end = start + len(changes)
            return {"changes": changes, "next": str(end), "more": end < len(self._changes)}
