"""Recovery: health checks and the replay of the backlog into the primary.

The replay sends each author's posts strictly in order (a post goes only
after the author's earlier ones are confirmed or dead-lettered), authors
concurrently, under a rate cap that follows the primary's own rate-limit
headers and Retry-After. Exactly-once rests on three things: conditional
state writes (pending -> sending -> replayed), a lease so that one run sends
at a time, and the same Idempotency-Key on every resend. Posts deleted here
after they were replayed are deleted on the primary by the same runs, under
the same gate, circuit and lease (delete_pending -> deleting -> deleted).

`ready_heads` is the pure scheduling decision; `ReplayRun` drives it with
threads; `Recovery` is the scheduled entry point.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.aws.lease import Lease
from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.clock import iso_at as utc_iso
from chalicelib.core.models import FAILED, REPLAYED, Post
from chalicelib.core.pagination import decode_cursor, encode_cursor, parse_limit
from chalicelib.errors import Conflict, NotFound
from chalicelib.observability import count, gauge, logger
from chalicelib.posts.archive import Spool
from chalicelib.posts.store import PostStore, StateChanged
from chalicelib.recovery.health import DOWN, UP, HealthState, HealthStore, observe, transition
from chalicelib.upstream.port import Backoff, Outcome, RateLimit, SendResult, Upstream, UpstreamDelete, UpstreamPost

LEASE_NAME = "replay"
# How long the lease outlives the run's own deadline: a holder that dies
# blocks replay for at most this long after its Lambda would have ended.
LEASE_GRACE_SECONDS = 60
# The lightest pace the rate-limit headers can push us down to.
MIN_RPS = 0.5
# Pace at this fraction of the primary's stated limit: room for the clocks
# of two machines disagreeing about where a window starts.
PACE_HEADROOM = 0.95
MIN_WINDOW_SECONDS = 0.05
IDLE_WAIT_SECONDS = 0.5
# Per-post backoff after a transient failure (full jitter, see upstream.Backoff):
# short, because a run lasts minutes and the circuit catches a failing primary.
SEND_BACKOFF_BASE_SECONDS = 0.2
SEND_BACKOFF_CAP_SECONDS = 10.0
# Optimistic-locking attempts on the health item before taking the stored view.
HEALTH_SAVE_ATTEMPTS = 3


# -- the scheduling decision (pure) -------------------------------------------


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


# -- pacing -----------------------------------------------------------------------


class RateGate:
    """Spaces sends to at most `max_rps`, slower when the primary's
    X-RateLimit headers say so, and not at all while it asked us to wait
    (Retry-After). Shared by every sending thread."""

    def __init__(self, max_rps: float, clock=time.monotonic, sleep=time.sleep) -> None:
        self._max_rps = max_rps
        self._interval = 1.0 / max_rps
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._paused_until = 0.0
        self._window = 0.0

    def wait_turn(self, give_up_at: float) -> bool:
        """Block until this caller may send; False (without a turn) if that
        would be after `give_up_at`."""
        with self._lock:
            now = self._clock()
            at = max(now, self._next_at, self._paused_until)
            if at > give_up_at:
                return False
            self._next_at = at + self._interval
        if at > now:
            self._sleep(at - now)
        return True

    def pause_for(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, rate_limit: RateLimit | None, in_flight: int) -> None:
        """Follow the primary's rate-limit headers.

        With X-RateLimit-Limit, pace evenly at (a little under) the limit
        per window, the window being the longest reset time seen: an even
        pace never exhausts a window, whereas spending the budget as it
        remains goes wrong when Reset is rounded to whole seconds; wait for
        the reset only once the window is spent. Without a stated limit,
        spread what remains (less what is in flight) over the time left,
        and wait for the reset when nothing remains.
        """
        if rate_limit is None or rate_limit.reset_after_seconds is None:
            return
        reset = rate_limit.reset_after_seconds
        with self._lock:
            self._window = max(self._window, reset)
            if rate_limit.limit:
                rps = PACE_HEADROOM * rate_limit.limit / max(self._window, MIN_WINDOW_SECONDS)
                spare = rate_limit.remaining
            elif rate_limit.remaining is not None:
                spare = rate_limit.remaining - in_flight
                rps = spare / max(reset, MIN_WINDOW_SECONDS)
            else:
                return
            self._interval = 1.0 / min(self._max_rps, max(MIN_RPS, rps))
        if spare is not None and spare <= 0:
            self.pause_for(reset)


class Circuit:
    """Opens after `threshold` consecutive failed sends; any success closes
    the streak. Once open, it stays open for the rest of the run."""

    def __init__(self, threshold: int) -> None:
        self._threshold = threshold
        self._streak = 0
        self._open = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._open

    def record(self, success: bool) -> None:
        with self._lock:
            self._streak = 0 if success else self._streak + 1
            self._open = self._open or self._streak >= self._threshold


# -- one run ----------------------------------------------------------------------


class StopReason(StrEnum):
    """Why a replay run ended, as /status and the replay report show it."""

    DRAINED = "drained"
    DEADLINE = "deadline"
    # Every post that could go next must wait (Retry-After, backoff) past the
    # run's deadline: the next run sends them, this one ends now.
    WAIT_PAST_DEADLINE = "wait_past_deadline"
    FENCED = "fenced"
    UPSTREAM_UNAUTHORIZED = "upstream_unauthorized"
    CIRCUIT_OPEN = "circuit_open"
    STALLED = "stalled"
    LEASE_HELD = "lease_held"
    # The S3 spool still holds posts: they may be older than what the table
    # holds for the same authors, so no replay until the fold has moved them.
    SPOOL_NOT_EMPTY = "spool_not_empty"
    # What is left belongs to authors folded in from the spool in this run:
    # the Backlog index may not show those posts yet, so they go next run.
    FOLDED_AUTHORS_WAIT = "folded_authors_wait"
    DRY_RUN = "dry_run"
    PRIMARY_NOT_UP = "primary_not_up"


class Step(StrEnum):
    SENT = "sent"
    DELETED = "deleted"
    DEAD = "dead"
    SKIPPED = "skipped"
    RETRY = "retry"
    ABORTED = "aborted"
    FENCED = "fenced"


@dataclass(frozen=True)
class StepResult:
    step: Step
    upstream_id: str | None = None
    retry_in: float = 0.0


@dataclass
class ReplayReport:
    started: str
    finished: str | None = None
    sent: int = 0
    # Copies on the primary deleted (their posts were deleted here).
    deleted: int = 0
    failed: int = 0
    retries: int = 0
    skipped: int = 0
    stopped_because: str = StopReason.DRAINED
    dry_run: bool = False
    would_send: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        report = {
            "started": self.started,
            "finished": self.finished,
            "sent": self.sent,
            "deleted": self.deleted,
            "failed": self.failed,
            "retries": self.retries,
            "skipped": self.skipped,
            "stopped_because": self.stopped_because,
        }
        if self.dry_run:
            report |= {"dry_run": True, "would_send": self.would_send}
        return report


@dataclass
class _Progress:
    """The coordinator's view of one window; touched by the coordinator only."""

    lanes: dict[str, deque[Post]]
    unresolved: set[str]
    upstream_ids: dict[str, str | None] = field(default_factory=dict)
    not_before: dict[str, float] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)
    in_flight: dict[Future, Post] = field(default_factory=dict)

    def busy_authors(self) -> set[str]:
        return {post.author for post in self.in_flight.values()}

    def resolve(self, post: Post, upstream_id: str | None = None) -> None:
        self.lanes[post.author].popleft()
        self.unresolved.discard(post.id)
        self.upstream_ids[post.id] = upstream_id

    def has_work(self) -> bool:
        return any(self.lanes.values())


def resolved(report: ReplayReport) -> int:
    """Posts of the backlog the run is done with, one way or another."""
    return report.sent + report.deleted + report.failed + report.skipped


class _Task:
    """What a run does with one backlog post, and the store transitions
    that go with it; one per kind of post, shared by the workers."""

    done_step: Step

    def __init__(self, store: PostStore, upstream: Upstream, owner: str) -> None:
        self._store, self._upstream, self._owner = store, upstream, owner


class _SendPost(_Task):
    """Replaying a post: pending -> sending -> replayed (or failed)."""

    done_step = Step.SENT

    def claim(self, post: Post, now: str) -> None:
        self._store.claim_for_sending(post, self._owner, now)

    def call(self, post: Post, parent: str | None, previous_attempts: int) -> SendResult:
        return self._upstream.send(_upstream_post(post, parent, previous_attempts))

    def done(self, post: Post, result: SendResult, now: str) -> None:
        self._store.mark_replayed(post, self._owner, result.upstream_id, now)
        count("Replayed")

    def dead(self, post: Post, reason: str, now: str) -> None:
        self._store.mark_failed(post, self._owner, reason, now)


class _DeleteCopy(_Task):
    """Deleting the primary's copy of a post deleted here: delete_pending ->
    deleting -> deleted (or delete_failed)."""

    done_step = Step.DELETED

    def claim(self, post: Post, now: str) -> None:
        self._store.claim_for_deleting(post, self._owner, now)

    def call(self, post: Post, parent: str | None, previous_attempts: int) -> SendResult:
        return self._upstream.delete(UpstreamDelete(post.id, post.author, post.upstream_id))

    def done(self, post: Post, result: SendResult, now: str) -> None:
        self._store.mark_deleted_upstream(post, self._owner, now)
        count("DeletedUpstream")

    def dead(self, post: Post, reason: str, now: str) -> None:
        self._store.mark_delete_failed(post, self._owner, reason, now)


class ReplayRun:
    """Sends one window of the backlog. Not reusable: one instance per run."""

    def __init__(
        self,
        store: PostStore,
        upstream: Upstream,
        settings: Settings,
        owner: str,
        give_up_at: float,
        clock=time.monotonic,
        wall_clock=time.time,
        sleep=time.sleep,
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._settings = settings
        self._owner = owner
        self._give_up_at = give_up_at
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._gate = RateGate(settings.replay_max_rps, clock=clock, sleep=sleep)
        self.circuit = Circuit(settings.replay_circuit_failures)
        self._backoff = Backoff(base_seconds=SEND_BACKOFF_BASE_SECONDS, cap_seconds=SEND_BACKOFF_CAP_SECONDS)
        self._send = _SendPost(store, upstream, owner)
        self._delete = _DeleteCopy(store, upstream, owner)
        self._parents: dict[str, str | bool | None] = {}
        self._fenced = False
        self._unauthorized = False
        self._wait_past_deadline = False

    def send_window(self, window: list[Post], report: ReplayReport) -> StopReason | None:
        """Send what it can of `window`; the reason it stopped early, or None
        when every post of the window was resolved."""
        progress = _Progress(author_lanes(window), {post.id for post in window})
        with ThreadPoolExecutor(max_workers=self._settings.replay_concurrency) as pool:
            stop = None
            while progress.has_work() or progress.in_flight:
                stop = stop or self._stop_reason()
                if stop is None:
                    self._dispatch(pool, progress)
                if not progress.in_flight:
                    if stop or not progress.has_work():
                        break
                    self._idle(progress)
                    continue
                self._collect(progress, report)
                stop = stop or self._stop_reason()
            return stop if progress.has_work() or stop == StopReason.FENCED else None

    def _stop_reason(self) -> StopReason | None:
        if self._fenced:
            return StopReason.FENCED
        if self._unauthorized:
            return StopReason.UPSTREAM_UNAUTHORIZED
        if self.circuit.is_open:
            return StopReason.CIRCUIT_OPEN
        if self._wait_past_deadline:
            return StopReason.WAIT_PAST_DEADLINE
        if self._clock() >= self._give_up_at:
            return StopReason.DEADLINE
        return None

    def _dispatch(self, pool: ThreadPoolExecutor, progress: _Progress) -> None:
        free = self._settings.replay_concurrency - len(progress.in_flight)
        heads = ready_heads(
            progress.lanes, progress.busy_authors(), progress.unresolved, progress.not_before, self._clock()
        )
        for post in heads[:free]:
            parent = None if post.awaits_upstream_delete else self._parent_upstream_id(post, progress)
            if parent is False:
                # The parent is pending outside this window (it was cut): this
                # author's lane waits for a later window or run.
                progress.lanes[post.author].clear()
                continue
            claim = post.id not in progress.claimed
            progress.claimed.add(post.id)
            attempt = progress.attempts.get(post.id, 0)
            future = pool.submit(self._attempt, post, parent, claim, attempt, len(progress.in_flight) + 1)
            progress.in_flight[future] = post

    def _parent_upstream_id(self, post: Post, progress: _Progress) -> str | bool | None:
        """The parent's upstream id; None to send the post as a top-level post
        (its parent will never be upstream: deleted or dead-lettered); False
        if the parent is still waiting to be replayed."""
        parent_id = post.in_reply_to
        if parent_id is None:
            return None
        if parent_id in progress.upstream_ids:
            return progress.upstream_ids[parent_id]
        if parent_id not in self._parents:
            parent = self._store.get_post(parent_id)
            if parent is not None and parent.state == REPLAYED:
                self._parents[parent_id] = parent.upstream_id
            elif parent is None or parent.state == FAILED or parent.is_deleted:
                self._parents[parent_id] = None
            else:
                return False
        return self._parents[parent_id]

    def _idle(self, progress: _Progress) -> None:
        """Nothing in flight and nothing ready: wait for the next backoff to
        end, or stop if even the first ends past the deadline (every lane
        head is then in backoff, or waits for a parent that is)."""
        now = self._clock()
        waits = [at for at in progress.not_before.values() if at > now]
        if waits and min(waits) >= self._give_up_at:
            self._wait_past_deadline = True
            return
        until = min([*waits, now + IDLE_WAIT_SECONDS, self._give_up_at])
        self._sleep(max(0.0, until - now))

    def _collect(self, progress: _Progress, report: ReplayReport) -> None:
        done, _ = wait(list(progress.in_flight), timeout=IDLE_WAIT_SECONDS, return_when=FIRST_COMPLETED)
        for future in done:
            post = progress.in_flight.pop(future)
            self._account(post, future.result(), progress, report)

    def _account(self, post: Post, result: StepResult, progress: _Progress, report: ReplayReport) -> None:
        if result.step is Step.SENT:
            report.sent += 1
            progress.resolve(post, result.upstream_id)
        elif result.step is Step.DELETED:
            report.deleted += 1
            progress.resolve(post)  # a reply waiting on it goes as a top-level post
        elif result.step is Step.DEAD:
            report.failed += 1
            progress.resolve(post)
        elif result.step is Step.SKIPPED:
            report.skipped += 1
            progress.resolve(post)
        elif result.step is Step.RETRY:
            report.retries += 1
            progress.attempts[post.id] = progress.attempts.get(post.id, 0) + 1
            progress.not_before[post.id] = self._clock() + result.retry_in
        elif result.step is Step.FENCED:
            self._fenced = True  # another run owns these posts now: stop at once
        elif result.step is Step.ABORTED:
            # The gate's next turn is past the deadline (or the circuit
            # opened): dispatching again would spin. The post was not claimed.
            self._wait_past_deadline = True

    def _attempt(self, post: Post, parent: str | None, claim: bool, attempt: int, in_flight: int) -> StepResult:
        """One send (or upstream delete) of one post (runs on a worker thread)."""
        if not self._gate.wait_turn(self._give_up_at) or self.circuit.is_open:
            return StepResult(Step.ABORTED)
        task = self._delete if post.awaits_upstream_delete else self._send
        try:
            if claim:
                task.claim(post, utc_iso(self._wall_clock()))
        except StateChanged:
            return StepResult(Step.SKIPPED)  # deleted (or finished by another run) meanwhile
        result = task.call(post, parent, post.send_attempts + attempt)
        self._gate.observe(result.rate_limit, in_flight)
        try:
            return self._settle(task, post, result, attempt)
        except StateChanged:
            return StepResult(Step.FENCED)

    def _settle(self, task: _SendPost | _DeleteCopy, post: Post, result: SendResult, attempt: int) -> StepResult:
        now = utc_iso(self._wall_clock())
        if result.outcome is Outcome.DONE:
            self.circuit.record(success=True)
            task.done(post, result, now)
            return StepResult(task.done_step, upstream_id=result.upstream_id)
        if result.outcome is Outcome.UNAUTHORIZED:
            self._unauthorized = True
            logger.error("the primary refused our token; replay stopped", extra={"status": result.status})
            return StepResult(Step.RETRY, retry_in=0.0)
        if result.outcome is Outcome.PERMANENT:
            self.circuit.record(success=True)
            task.dead(post, f"HTTP {result.status}: {result.detail}"[:600], now)
            count("DeadLettered")
            logger.warning("post dead-lettered", extra={"post_id": post.id, "status": result.status})
            return StepResult(Step.DEAD)
        count("ReplayFailures")
        if result.outcome is Outcome.RETRY_AFTER:
            self._gate.pause_for(result.retry_after_seconds or 0.0)
            # A 429 is the primary pacing us; a 503 is the primary failing.
            self.circuit.record(success=result.status == 429)
            return StepResult(Step.RETRY, retry_in=result.retry_after_seconds or 0.0)
        self.circuit.record(success=False)
        return StepResult(Step.RETRY, retry_in=self._backoff.delay(attempt))


def _upstream_post(post: Post, parent_upstream_id: str | None, previous_attempts: int = 0) -> UpstreamPost:
    return UpstreamPost(
        id=post.id,
        author=post.author,
        text=post.text,
        created_at=post.created_at,
        in_reply_to=parent_upstream_id,
        idempotency_key=post.idempotency_key,
        previous_attempts=previous_attempts,
        spoiler_text=post.spoiler_text,
        language=post.language,
    )


# -- the scheduled entry point ----------------------------------------------------


class Recovery:
    """Health check, then (when the primary is up) replay, then metrics."""

    def __init__(
        self,
        store: PostStore,
        health: HealthStore,
        lease: Lease,
        upstream: Upstream | None,
        settings: Settings,
        wall_clock=time.time,
        clock=time.monotonic,
        sleep=time.sleep,
        spool: Spool | None = None,
    ) -> None:
        self._store = store
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

    def replay_now(self, remaining_seconds: Callable[[], float], dry_run: bool = False) -> dict:
        """POST /admin/replay: one health check and, if the primary is up, a
        replay now; a dry run only lists what would be sent, in order."""
        if dry_run:
            return {"primary": self._health.load().state, **self.replay(remaining_seconds, dry_run=True).to_dict()}
        if self._upstream is None:
            raise Conflict("no primary is configured (UPSTREAM_URL)", code="no_upstream")
        state = self.check_health()
        if state.state != UP:
            return {"primary": state.state, "sent": 0, "stopped_because": StopReason.PRIMARY_NOT_UP}
        return {"primary": state.state, **self.replay(remaining_seconds).to_dict()}

    def status(self) -> dict:
        """GET /status: what clients need to decide when to switch back."""
        backlog = self._store.backlog_counts()
        oldest = self._store.oldest_pending()
        health = self._health.load()
        return {
            "mode": mode_for(health.state, backlog.posts + backlog.upstream_deletes),
            "backlog": backlog.posts,
            "upstream_deletes": backlog.upstream_deletes,
            "oldest_pending_at": oldest[0].created_at if oldest else None,
            "dead_letters": self._store.dead_letter_count(),
            **health.to_public(),
        }

    def dead_letters(self, cursor: str | None, limit: str | None) -> dict:
        size = parse_limit(limit, self._settings.default_page_size, self._settings.max_page_size)
        page = self._store.dead_letters(decode_cursor(cursor), size)
        return {
            "dead_letters": [_dead_letter(post) for post in page.posts],
            "next_cursor": encode_cursor(page.posts[-1].id) if page.has_more else None,
        }

    def retry_dead_letter(self, post_id: str) -> dict:
        """Put a dead letter back in the backlog, in its original place."""
        post = self._store.get_post(post_id) if ids.is_ulid(post_id) else None
        if post is None or not post.is_dead_letter:
            raise NotFound(f"no dead letter {post_id}", code="dead_letter_not_found")
        try:
            self._store.requeue_dead_letter(post)
        except StateChanged as exc:
            raise Conflict("the post changed meanwhile; reload it", code="post_busy") from exc
        return self._store.get_post(post_id).to_public()

    def check_health(self) -> HealthState:
        healthy = self._upstream.check_health()
        now = utc_iso(self._wall_clock())
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
        self, remaining_seconds: Callable[[], float], dry_run: bool = False, hold_authors: frozenset[str] = frozenset()
    ) -> ReplayReport:
        report = ReplayReport(started=utc_iso(self._wall_clock()), dry_run=dry_run)
        if dry_run:
            report.would_send = [_planned(post) for post in self._window()]
            report.stopped_because = StopReason.DRY_RUN
            report.finished = utc_iso(self._wall_clock())
            return report
        if self._spool is not None and self._spool.keys(1):
            report.stopped_because = StopReason.SPOOL_NOT_EMPTY
            report.finished = utc_iso(self._wall_clock())
            self._health.record_replay(report.to_dict())
            return report
        owner = uuid.uuid4().hex
        if not self._lease.acquire(owner, remaining_seconds() + LEASE_GRACE_SECONDS):
            report.stopped_because = StopReason.LEASE_HELD
            report.finished = utc_iso(self._wall_clock())
            return report
        try:
            self._replay_windows(owner, remaining_seconds, report, hold_authors)
        finally:
            self._lease.release(owner)
        report.finished = utc_iso(self._wall_clock())
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
            whole = self._window()
            # Leaving out whole authors keeps every other author's lane a
            # prefix of their backlog.
            window = [post for post in whole if post.author not in hold_authors]
            if not window:
                report.stopped_because = StopReason.FOLDED_AUTHORS_WAIT if whole else StopReason.DRAINED
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

    def _window(self) -> list[Post]:
        """The posts to send (a prefix of the backlog by id) and the copies to
        delete; the two never hold the same post."""
        per_shard = self._settings.replay_window_per_shard
        return self._store.backlog_window(per_shard) + self._store.upstream_delete_window(per_shard)

    def _mark_down(self, reason: str) -> None:
        for _ in range(HEALTH_SAVE_ATTEMPTS):
            current = self._health.load()
            if current.state == DOWN or self._health.save(
                transition(current, DOWN, utc_iso(self._wall_clock()), reason), current.version
            ):
                return

    def publish_backlog_metrics(self, state: HealthState) -> None:
        oldest = self._store.oldest_pending()
        age = 0.0
        if oldest:
            age = max(0.0, self._wall_clock() - ids.ulid_millis(oldest[0].id) / 1000)
        backlog = self._store.backlog_counts()
        gauge("BacklogSize", backlog.posts)
        gauge("UpstreamDeletesPending", backlog.upstream_deletes)
        gauge("OldestPendingAgeSeconds", round(age, 1), unit="Seconds")
        gauge("UpstreamUp", 1 if state.state == UP else 0)


def mode_for(primary: str, backlog: int) -> str:
    """`fallback` while the primary is not known to be up (clients post
    here), `recovering` while it is up and the backlog (posts to send,
    copies to delete) drains, `normal` once it is up and nothing is left
    (clients can switch back)."""
    if primary != UP:
        return "fallback"
    return "recovering" if backlog else "normal"


def _dead_letter(post: Post) -> dict:
    return {**post.to_public(), "failure_reason": post.failure_reason, "failed_at": post.failed_at}


def _planned(post: Post) -> dict:
    return {
        "id": post.id,
        "author": post.author,
        "created_at": post.created_at,
        "in_reply_to": post.in_reply_to,
        "action": "delete" if post.awaits_upstream_delete else "send",
    }
