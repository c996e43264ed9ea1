"""The replay's scheduling decisions, pure: which posts a run looks at,
which of them may go next, and what mode /status reports.

No I/O and no clock of their own: plain lists and sets in, posts out, so
the per-author order can be tested without a store or a primary.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol

from chalicelib.core.models import Post
from chalicelib.recovery.health import UP


class WindowSource(Protocol):
    """Where the backlog's windows come from (`recovery.backlog.BacklogStore`)."""

    def backlog_window(self, per_shard: int) -> list[Post]: ...

    def upstream_delete_window(self, per_shard: int) -> list[Post]: ...


def next_window(store: WindowSource, per_shard: int) -> list[Post]:
    """The posts to send (a prefix of the backlog by id) and the copies to
    delete; the two never hold the same post."""
    return store.backlog_window(per_shard) + store.upstream_delete_window(per_shard)


def author_lanes(window: Iterable[Post]) -> dict[str, deque[Post]]:
    """Each author's posts of the window, oldest first."""
    lanes: dict[str, deque[Post]] = {}
    for post in sorted(window, key=lambda post: post.id):
        lanes.setdefault(post.author, deque()).append(post)
    return lanes


def ready_heads(
    lanes: dict[str, deque[Post]],
    busy_authors: set[str],
    unresolved: set[str],
    not_before: dict[str, float],
    now: float,
) -> list[Post]:
    """The posts that may be sent now, oldest first.

    Only the head of an author's lane may go, and only while no other post
    of that author is in flight: that is the per-author order. A reply waits
    while its parent is still unresolved in this window, whoever wrote it,
    because the primary needs the parent's upstream id. Parents are always
    older than their replies, so these waits cannot form a cycle. The delete
    of a reply's copy on the primary needs no parent, and does not wait.
    """
    heads = [lane[0] for author, lane in lanes.items() if lane and author not in busy_authors]
    return sorted(
        (post for post in heads if not_before.get(post.id, 0.0) <= now and not _waits_for_parent(post, unresolved)),
        key=lambda post: post.id,
    )


def _waits_for_parent(post: Post, unresolved: set[str]) -> bool:
    return post.in_reply_to in unresolved and not post.awaits_upstream_delete


def mode_for(primary: str, backlog: int) -> str:
    """`fallback` while the primary is not known to be up (clients post
    here), `recovering` while it is up and the backlog (posts to send,
    copies to delete) drains, `normal` once it is up and nothing is left
    (clients can switch back)."""
    if primary != UP:
        return "fallback"
    return "recovering" if backlog else "normal"
