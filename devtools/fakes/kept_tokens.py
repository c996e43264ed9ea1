"""In-memory stand-in for the kept tokens' markers as the replay retires
them (`upstream.tokens.KeptTokens.retire_shards`): markers by shard, each
user's kept digest and last change, and the shards queried.
tests/functional/test_kept_tokens_contract.py runs one suite on both."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chalicelib.accounts.kept_tokens import marker_shard_of
from chalicelib.upstream.tokens import ShardsRetired


@dataclass
class InMemoryKeptTokens:
    shards: int
    markers: dict[int, dict[str, str]] = field(default_factory=dict)  # shard -> username -> sha256
    kept: dict[str, str] = field(default_factory=dict)  # username -> sha256
    changed_at: dict[str, str] = field(default_factory=dict)  # username -> feed_changed_at
    queried: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, username: str, sha256: str, changed_at: str) -> None:
        """A post made with a token newly kept (its marker with it)."""
        with self._lock:
            self.kept[username] = sha256
            self.markers.setdefault(marker_shard_of(username, self.shards), {})[username] = sha256
            self.changed_at[username] = changed_at

    def retire_shards(
        self, shards: Iterable[int], quiet_before: str, keep_going: Callable[[], bool] = lambda: True
    ) -> ShardsRetired:
        retired, unfinished = 0, set()
        pending = list(shards)
        while pending and keep_going():
            shard = pending.pop(0)
            with self._lock:
                self.queried.append(shard)
                found = dict(self.markers.get(shard, {}))
            for username, sha256 in found.items():
                retired += self._drop(shard, username, sha256, quiet_before)
            if self.markers.get(shard):
                unfinished.add(shard)
        return ShardsRetired(retired, frozenset(unfinished | set(pending)))

    def _drop(self, shard: int, username: str, sha256: str, quiet_before: str) -> int:
        with self._lock:
            changed = self.changed_at.get(username)
            if self.kept.get(username) != sha256 or (changed is not None and changed >= quiet_before):
                return 0
            del self.kept[username]
            del self.markers[shard][username]
            return 1
