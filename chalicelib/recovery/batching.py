"""Group commit for the replay's store transitions.

The run's sending threads each claim a post, send it, and confirm it. On
their own, that is two store requests per post, one at a time per thread;
against a store that serves requests one after another (moto, or a
DynamoDB partition near its limit) the threads queue behind each other and
the replay falls far below the primary's limit. A `GroupCommit` lets the
threads hand their transitions in instead: the first thread to find no
commit under way commits what is queued (up to `max_items`) in one call,
while the others wait and queue more; each thread gets its own item's
answer. No thread waits for a timer: a lone thread commits its own item at
once, so batching costs no latency, only the wait for the commit before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass
class _Ticket(Generic[Item]):
    item: Item
    key: str
    done: bool = False
    changed: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[Item]):
    """`commit(items)` applies up to `max_items` items at once and returns
    the keys of those whose state had changed (not applied); `submit` is
    called from any number of threads."""

    def __init__(self, commit: Callable[[list[Item]], set[str]], key: Callable[[Item], str], max_items: int) -> None:
        self._commit = commit
        self._key = key
        self._max_items = max_items
        self._cond = threading.Condition()
        self._queue: list[_Ticket[Item]] = []
        self._committing = False

    def submit(self, item: Item) -> bool:
        """Apply `item` with whatever else is queued: True if it was
        applied, False if its state had changed. Raises what the commit
        that carried it raised."""
        ticket = _Ticket(item, self._key(item))
        with self._cond:
            self._queue.append(ticket)
        while True:
            with self._cond:
                while self._committing and not ticket.done:
                    self._cond.wait()
                if ticket.done:
                    break
                self._committing = True
                batch, self._queue = self._queue[: self._max_items], self._queue[self._max_items :]
            self._commit_batch(batch)
        if ticket.error is not None:
            raise ticket.error
        return not ticket.changed

    def _commit_batch(self, batch: list[_Ticket[Item]]) -> None:
        changed: set[str] = set()
        error: BaseException | None = None
        try:
            changed = self._commit([ticket.item for ticket in batch])
        except Exception as exc:  # each waiting thread raises it as its own
            error = exc
        with self._cond:
            for ticket in batch:
                ticket.done, ticket.changed, ticket.error = True, ticket.key in changed, error
            self._committing = False
            self._cond.notify_all()
