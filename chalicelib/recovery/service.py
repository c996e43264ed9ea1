"""The scheduled recovery job: check the primary's health and, once it is
up, replay the backlog into it (`replay.ReplayRun`), then publish the
backlog's metrics.

Posts deleted here after they were replayed are deleted on the primary by
the same runs, under the same gate, circuit and lease. One run replays at
a time: the lease says which.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chalicelib.core import ids
from chalicelib.core.clock import iso_at
from chalicelib.core.models import Post
from chalicelib.errors import Conflict, StoreUnavailable
from chalicelib.observability import gauge, logger
from chalicelib.recovery.health import DOWN, UP, HealthState, observe, transition
from chalicelib.recovery.replay import ReplayReport, ReplayRun, ReplayStore, StopReason, resolved
from chalicelib.recovery.schedule import next_window

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from chalicelib.recovery.backlog import BacklogStatus
    from chalicelib.upstream.port import Upstream

LEASE_NAME = "replay"
# How long the lease outlives the run's own deadline: a holder that dies
# blocks replay for at most this long after its Lambda would have ended.
LEASE_GRACE_SECONDS = 60
# Optimistic-locking attempts on the health item before taking the stored view.
HEALTH_SAVE_ATTEMPTS = 3


class RecoveryStore(ReplayStore, Protocol):
    """The backlog as the job sees it: a run's transitions, its windows and
    the counts it publishes (`recovery.backlog.BacklogStore`)."""

    def backlog_window(self, per_shard: int) -> list[Post]: ...

    def upstream_delete_window(self, per_shard: int) -> list[Post]: ...

    def status(self, with_mirror: bool = False) -> BacklogStatus: ...

    def settle_oldest(self, status: BacklogStatus) -> str | None: ...


class HealthRepo(Protocol):
    """The primary's health, saved with optimistic locking
    (`recovery.health_store.HealthStore`)."""

    def load(self) -> HealthState: ...

    def save(self, new: HealthState, expected_version: int) -> bool: ...

    def record_replay(self, report: dict) -> None: ...


class ReplayLease(Protocol):
    """One holder at a time, until released or expired (`aws.lease.Lease`)."""

    def acquire(self, owner: str, seconds: float) -> bool: ...

    def release(self, owner: str) -> None: ...


class SpoolProbe(Protocol):
    """Whether the S3 spool still holds posts (`posts.archive.Spool`)."""

    def keys(self, limit: int) -> list[str]: ...


class KeptTokenRetirer(Protocol):
    """The authors' kept primary tokens (`upstream.tokens.KeptTokens`)."""

    def retire(self, quiet_before: str, keep_going: Callable[[], bool]) -> int: ...


class Recovery:
    """Health check, then (when the primary is up) replay, then metrics.
    With `kept_tokens`, a run that empties the backlog retires the kept
    primary tokens of the authors it has nothing left of."""

    def __init__(
        self,
        store: RecoveryStore,
        health: HealthRepo,
        lease: ReplayLease,
        upstream: Upstream | None,
        settings: Settings,
        wall_clock=time.time,
        clock=time.monotonic,
        sleep=time.sleep,
        spool: SpoolProbe | None = None,
        kept_tokens: KeptTokenRetirer | None = None,
    ) -> None:
        self._store = store
        self._kept_tokens = kept_tokens
        self._health = health
        self._lease = lease
        self._upstream = upstream
        self._settings = settings
        self._spool = spool
        self._wall_clock = wall_clock
        self._clock = clock
        self._sleep = sleep

    def run(self, remaining_seconds: Callable[[], float], hold_authors: frozenset[str] = frozenset()) -> dict:
        """`hold_authors`: authors whose posts must not be sent in this run."""
        if self._upstream is None:
            state = self._health.load()
            result: dict = {"primary": "unconfigured"}
        else:
            state = self.check_health()
            result = {"primary": state.state}
            if state.state == UP:
                result["replay"] = self.replay(remaining_seconds, hold_authors=hold_authors).to_dict()
        self.publish_backlog_metrics(state)
        return result

    def replay_now(self, remaining_seconds: Callable[[], float]) -> dict:
        """POST /admin/replay: one health check and, if the primary is up, a
        replay now (a dry run is `admin.RecoveryAdmin.replay_plan`)."""
        if self._upstream is None:
            raise Conflict("no primary is configured (UPSTREAM_URL)", code="no_upstream")
        state = self.check_health()
        if state.state != UP:
            return {"primary": state.state, "sent": 0, "stopped_because": StopReason.PRIMARY_NOT_UP}
        return {"primary": state.state, **self.replay(remaining_seconds).to_dict()}

    def check_health(self) -> HealthState:
        healthy = self._upstream.check_health()
        now = iso_at(self._wall_clock())
        s = self._settings
        for _ in range(HEALTH_SAVE_ATTEMPTS):
            current = self._health.load()
            new = observe(current, healthy, now, s.health_up_after, s.health_down_after)
            if self._health.save(new, current.version):
                if new.state != current.state:
                    logger.warning("primary health changed", extra={"from": current.state, "to": new.state})
                return new
        return self._health.load()

    def replay(
        self, remaining_seconds: Callable[[], float], hold_authors: frozenset[str] = frozenset()
    ) -> ReplayReport:
        report = ReplayReport(started=iso_at(self._wall_clock()))
        if self._spool is not None and self._spool.keys(1):
            report.stopped_because = StopReason.SPOOL_NOT_EMPTY
            report.finished = iso_at(self._wall_clock())
            self._health.record_replay(report.to_dict())
            return report
        owner = uuid.uuid4().hex
        if not self._lease.acquire(owner, remaining_seconds() + LEASE_GRACE_SECONDS):
            report.stopped_because = StopReason.LEASE_HELD
            report.finished = iso_at(self._wall_clock())
            return report
        try:
            self._replay_windows(owner, remaining_seconds, report, hold_authors)
        finally:
            self._lease.release(owner)
        report.finished = iso_at(self._wall_clock())
        self._health.record_replay(report.to_dict())
        logger.info("replay finished", extra=report.to_dict())
        return report

    def _replay_windows(
        self, owner: str, remaining_seconds: Callable[[], float], report: ReplayReport, hold_authors: frozenset[str]
    ) -> None:
        give_up_at = self._clock() + remaining_seconds() - self._settings.replay_safety_margin_seconds
        run = ReplayRun(
            self._store,
            self._upstream,
            self._settings,
            owner,
            give_up_at,
            clock=self._clock,
            wall_clock=self._wall_clock,
            sleep=self._sleep,
        )
        while True:
            read_at = self._wall_clock()
            whole = self._next_window()
            # Leaving out whole authors keeps every other author's lane a
            # prefix of their backlog.
            window = [post for post in whole if post.author not in hold_authors]
            if not window:
                report.stopped_because = StopReason.FOLDED_AUTHORS_WAIT if whole else StopReason.DRAINED
                if not whole:
                    self._retire_kept_tokens(read_at, give_up_at)
                return
            resolved_before = resolved(report)
            stopped = run.send_window(window, report)
            if not stopped and resolved(report) == resolved_before:
                stopped = StopReason.STALLED  # a window that resolves nothing would loop forever
            if stopped:
                report.stopped_because = stopped
                if stopped == StopReason.CIRCUIT_OPEN:
                    self._mark_down(f"replay stopped after {self._settings.replay_circuit_failures} failed sends")
                return

    def _next_window(self) -> list[Post]:
        """The next window, read only when the stream's counts (one
        BatchGetItem) say the backlog holds something: reading it queries
        every write shard twice. The counts lag the table by the stream's
        lag (`StreamIteratorAgeAlarm` past a minute), well under the
        Backlog index's settle time, which the drained run already assumes."""
        counts = self._store.status().counts
        if not (counts.posts or counts.upstream_deletes):
            return []
        return next_window(self._store, self._settings.replay_window_per_shard)

    def _retire_kept_tokens(self, read_at: float, give_up_at: float) -> None:
        """The backlog was empty when read at `read_at`: every author who
        posted or deleted before it, by more than the Backlog index's settle
        time (ARCHIVE_SETTLE_SECONDS), has nothing left to send, so their
        kept tokens go, within the run's time. A later post keeps its token
        again: its write's condition finds none stored. A store that cannot
        answer now leaves them to the next drained run."""
        if self._kept_tokens is None:
            return
        quiet_before = iso_at(read_at - self._settings.archive_settle_seconds)
        try:
            retired = self._kept_tokens.retire(quiet_before, lambda: self._clock() < give_up_at)
        except StoreUnavailable as exc:
            logger.warning("kept tokens not retired now", extra={"reason": str(exc)})
            return
        if retired:
            logger.info("kept primary tokens retired", extra={"retired": retired})

    def _mark_down(self, reason: str) -> None:
        for _ in range(HEALTH_SAVE_ATTEMPTS):
            current = self._health.load()
            if current.state == DOWN or self._health.save(
                transition(current, DOWN, iso_at(self._wall_clock()), reason), current.version
            ):
                return

    def publish_backlog_metrics(self, state: HealthState) -> None:
        """The backlog's gauges, from the stream's counts (one read); the
        oldest pending post is looked up again only once the recorded one
        has left the backlog (`BacklogStore.settle_oldest`)."""
        status = self._store.status()
        oldest = self._store.settle_oldest(status)
        age = 0.0
        if oldest:
            age = max(0.0, self._wall_clock() - ids.ulid_millis(oldest) / 1000)
        backlog = status.counts
        gauge("BacklogSize", backlog.posts)
        gauge("UpstreamDeletesPending", backlog.upstream_deletes)
        gauge("OldestPendingAgeSeconds", round(age, 1), unit="Seconds")
        gauge("UpstreamUp", 1 if state.state == UP else 0)
