"""Which kept-token marker shards a drained replay run visits to retire
tokens: those the stream noted since the last visit (`stream.active`,
kind `KEPT`: the marker shards of authors whose posts appeared or
disappeared), the ones a visit left unfinished, a rolling sweep of one
shard a minute, and every shard on the first run. Pure: the markers' store
is a port.

A shard is unfinished, and carried to the next run, while it still holds a
marker after its visit (an author not yet quiet, or a token another has
replaced since) or when the run's time ran out before it. docs/DESIGN.md
("Replay as the author", access pattern 45) argues no marker is missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from chalicelib.stream import active
from chalicelib.upstream.tokens import ShardsRetired

KEPT_READER = "kept-tokens"


class ShardRetirer(Protocol):
    """The kept tokens' markers by shard (`upstream.tokens.KeptTokens`)."""

    def retire_shards(
        self, shards: Iterable[int], quiet_before: str, keep_going: Callable[[], bool]
    ) -> ShardsRetired: ...


class NotedRetirement:
    """`recovery.service.KeptTokenRetirer` over the noted shards only."""

    def __init__(self, tokens: ShardRetirer, visits: active.Visits, wall_clock=time.time) -> None:
        self._tokens = tokens
        self._visits = visits
        self._wall_clock = wall_clock

    def retire(self, quiet_before: str, keep_going: Callable[[], bool]) -> int:
        """Raises StoreUnavailable before the cursor moves: the next run
        visits the same shards again (dropping a token is idempotent)."""
        # The rolling sweep is the net for a marker no note points to: its
        # post was refused after the token was kept, or its note expired
        # (`NOTE_DAYS`) in an outage longer than that.
        visit = self._visits.plan(KEPT_READER, active.KEPT, self._wall_clock(), rolling=True)
        done = self._tokens.retire_shards(visit.shards, quiet_before, keep_going)
        self._visits.finish(visit, done.unfinished)
        return done.retired
