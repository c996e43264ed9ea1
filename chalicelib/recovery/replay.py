"""One replay run: sends windows of the backlog into the primary.

Each author's posts go strictly in order (a post goes only after the
author's earlier ones are confirmed or dead-lettered), authors
concurrently, under the `pacing` gate and circuit. Exactly-once rests on
conditional state writes (pending -> sending -> replayed), the replay
lease the caller holds, and the same Idempotency-Key on every resend.
`ReplayRun` runs on the clock and sleep it is given.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from chalicelib.core.clock import iso_at
from chalicelib.core.models import FAILED, MIRRORED, REPLAYED, Post
from chalicelib.errors import StateChanged, StoreUnavailable
from chalicelib.observability import count, logger
from chalicelib.recovery.batching import GroupCommit
from chalicelib.recovery.pacing import Circuit, RateGate
from chalicelib.recovery.schedule import author_lanes, ready_heads
from chalicelib.upstream.port import Backoff, Outcome, SendResult, UpstreamDelete, UpstreamPost

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from chalicelib.upstream.port import Upstream

IDLE_WAIT_SECONDS = 0.5
# The most posts one grouped claim or confirm takes (a confirm is two
# writes, a DynamoDB transaction at most 100).
MAX_BATCH_POSTS = 25
# Posts a run holds between claim and confirm per send slot
# (REPLAY_CONCURRENCY bounds the sends in flight to the primary): while one
# is being sent, the others are being claimed or confirmed, so the store's
# round trips do not keep a slot from the primary.
POSTS_PER_SEND_SLOT = 3
# Per-post backoff after a transient failure (full jitter, see upstream.Backoff):
# short, because a run lasts minutes and the circuit catches a failing primary.
SEND_BACKOFF_BASE_SECONDS = 0.2
SEND_BACKOFF_CAP_SECONDS = 10.0
# A Retry-After with this status is the primary pacing us, not failing: it
# does not count towards the circuit.
TOO_MANY_REQUESTS = 429
# The longest failure reason a dead letter keeps (the primary's answer may be
# a whole error page).
FAILURE_REASON_MAX_CHARS = 600


# An attempt's answer when the primary did not take the post.
NOT_TAKEN = object()


class ReplayStore(Protocol):
    """What a run needs of the backlog (`recovery.backlog.BacklogStore`):
    each transition raises StateChanged when the post moved meanwhile."""

    def get_post(self, post_id: str) -> Post | None: ...

    def claim_for_sending(self, post: Post, owner: str, now_iso: str) -> Post: ...

    def claim_for_deleting(self, post: Post, owner: str, now_iso: str) -> Post: ...

    def mark_replayed(self, post: Post, owner: str, upstream_id: str | None, at: str) -> None: ...

    def claim_many_for_sending(self, posts: list[Post], owner: str, now_iso: str) -> set[str]: ...

    def release_claim(self, post: Post, owner: str) -> None: ...

    def mark_many_replayed(self, sent: list[tuple[Post, str | None]], owner: str, at: str) -> set[str]: ...

    def mark_failed(self, post: Post, owner: str, reason: str, at: str) -> None: ...

    def mark_deleted_upstream(self, post: Post, owner: str, at: str) -> None: ...

    def mark_delete_failed(self, post: Post, owner: str, reason: str, at: str) -> None: ...


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
    # Set by a worker once the primary took its post (the upstream id),
    # before the confirm: its author's lane moves on from there.
    answers: dict[Future, Post] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)

    def busy_authors(self) -> set[str]:
        return {post.author for post in self.in_flight.values() if post.id not in self.answered}

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

    def __init__(self, store: ReplayStore, upstream: Upstream, owner: str) -> None:
        self._store, self._upstream, self._owner = store, upstream, owner


class _SendPost(_Task):
    """Replaying a post: pending -> sending -> replayed (or failed). Claims
    and confirms of the sending threads are committed in groups
    (`batching.GroupCommit`): one store request for many posts."""

    done_step = Step.SENT

    def __init__(self, store: ReplayStore, upstream: Upstream, owner: str) -> None:
        super().__init__(store, upstream, owner)
        self._claims = GroupCommit(self._claim_batch, lambda item: item[0].id, MAX_BATCH_POSTS)
        self._confirms = GroupCommit(self._confirm_batch, lambda item: item[0].id, MAX_BATCH_POSTS)

    def claim(self, post: Post, now: str) -> None:
        if not self._claims.submit((post, now)):
            raise StateChanged(post.id)

    def _claim_batch(self, batch: list[tuple[Post, str]]) -> set[str]:
        return self._store.claim_many_for_sending([post for post, _ in batch], self._owner, batch[-1][1])

    def _confirm_batch(self, batch: list[tuple[Post, str | None, str]]) -> set[str]:
        sent = [(post, upstream_id) for post, upstream_id, _ in batch]
        return self._store.mark_many_replayed(sent, self._owner, batch[-1][2])

    def call(self, post: Post, parent: str | None, previous_attempts: int) -> SendResult:
        return self._upstream.send(_upstream_post(post, parent, previous_attempts))

    def done(self, post: Post, result: SendResult, now: str) -> None:
        if not self._confirms.submit((post, result.upstream_id, now)):
            raise StateChanged(post.id)
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


@dataclass(frozen=True)
class ParentLink:
    """What a reply is sent with: its parent's upstream id (None: as a
    top-level post, the parent will never be upstream), or `waiting` while
    the parent is still to be replayed outside this window."""

    upstream_id: str | None = None
    waiting: bool = False


TOP_LEVEL = ParentLink()
PARENT_WAITING = ParentLink(waiting=True)


class ReplayRun:
    """Sends one window of the backlog. Not reusable: one instance per run."""

    def __init__(
        self,
        store: ReplayStore,
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
        self._send_slots = threading.BoundedSemaphore(settings.replay_concurrency)
        self._posts_in_flight = settings.replay_concurrency * POSTS_PER_SEND_SLOT
        self.circuit = Circuit(settings.replay_circuit_failures)
        self._backoff = Backoff(base_seconds=SEND_BACKOFF_BASE_SECONDS, cap_seconds=SEND_BACKOFF_CAP_SECONDS)
        self._send = _SendPost(store, upstream, owner)
        self._delete = _DeleteCopy(store, upstream, owner)
        # Parents outside the window that will never wait again (replayed,
        # dead-lettered or deleted), read once per run.
        self._settled_parents: dict[str, ParentLink] = {}
        self._fenced = False
        self._unauthorized = False
        self._wait_past_deadline = False

    def send_window(self, window: list[Post], report: ReplayReport) -> StopReason | None:
        """Send what it can of `window`; the reason it stopped early, or None
        when every post of the window was resolved."""
        progress = _Progress(author_lanes(window), {post.id for post in window})
        with ThreadPoolExecutor(max_workers=self._posts_in_flight) as pool:
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
        free = self._posts_in_flight - len(progress.in_flight)
        heads = ready_heads(
            progress.lanes, progress.busy_authors(), progress.unresolved, progress.not_before, self._clock()
        )
        for post in heads[:free]:
            parent = TOP_LEVEL if post.awaits_upstream_delete else self._parent_link(post, progress)
            if parent.waiting:
                # The parent is pending outside this window (it was cut): this
                # author's lane waits for a later window or run.
                progress.lanes[post.author].clear()
                continue
            claim = post.id not in progress.claimed
            progress.claimed.add(post.id)
            attempt = progress.attempts.get(post.id, 0)
            answer: Future = Future()
            future = pool.submit(self._attempt, post, parent.upstream_id, claim, attempt, answer)
            progress.in_flight[future] = post
            progress.answers[answer] = post

    def _parent_link(self, post: Post, progress: _Progress) -> ParentLink:
        """What the post is sent with: its parent's upstream id, as a
        top-level post if the parent will never be upstream (deleted or
        dead-lettered), or PARENT_WAITING while the parent is still to be
        replayed."""
        parent_id = post.in_reply_to
        if parent_id is None:
            return TOP_LEVEL
        if parent_id in progress.upstream_ids:
            return ParentLink(progress.upstream_ids[parent_id])
        if parent_id not in self._settled_parents:
            parent = self._store.get_post(parent_id)
            # A mirrored parent came from the primary: it has its id there.
            if parent is not None and parent.state in (REPLAYED, MIRRORED):
                self._settled_parents[parent_id] = ParentLink(parent.upstream_id)
            elif parent is None or parent.state == FAILED or parent.is_deleted:
                self._settled_parents[parent_id] = TOP_LEVEL
            else:
                return PARENT_WAITING
        return self._settled_parents[parent_id]

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
        waiting = [*progress.answers, *progress.in_flight]
        done, _ = wait(waiting, timeout=IDLE_WAIT_SECONDS, return_when=FIRST_COMPLETED)
        for answer in [future for future in done if future in progress.answers]:
            post = progress.answers.pop(answer)
            if answer.result() is not NOT_TAKEN:
                progress.answered.add(post.id)
                progress.resolve(post, answer.result())
        for future in [future for future in done if future in progress.in_flight]:
            post = progress.in_flight.pop(future)
            self._record_step(post, future.result(), progress, report)

    def _record_step(self, post: Post, result: StepResult, progress: _Progress, report: ReplayReport) -> None:
        """Count a finished step in the report and move the window on: a
        resolved post leaves its lane, a retry waits for its backoff."""
        if result.step is Step.SENT:
            report.sent += 1
            if post.id not in progress.answered:
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
            # opened): dispatching again would spin. Its claim was given back.
            progress.claimed.discard(post.id)
            self._wait_past_deadline = True

    def _attempt(self, post: Post, parent: str | None, claim: bool, attempt: int, answer: Future) -> StepResult:
        try:
            return self._attempt_once(post, parent, claim, attempt, answer)
        finally:
            if not answer.done():
                answer.set_result(NOT_TAKEN)

    def _attempt_once(self, post: Post, parent: str | None, claim: bool, attempt: int, answer: Future) -> StepResult:
        """One send (or upstream delete) of one post (runs on a worker
        thread): claim, then a send slot and the gate's turn, the send, and
        the confirm. A post claimed here whose turn comes too late is given
        back (`pending`) unsent."""
        if self.circuit.is_open or self._clock() >= self._give_up_at:
            return StepResult(Step.ABORTED)
        task = self._delete if post.awaits_upstream_delete else self._send
        try:
            if claim:
                task.claim(post, iso_at(self._wall_clock()))
        except StateChanged:
            return StepResult(Step.SKIPPED)  # deleted (or finished by another run) meanwhile
        result = self._send_in_slot(task, post, parent, post.send_attempts + attempt)
        if result is None:
            if claim:
                self._release(post)
            return StepResult(Step.ABORTED)
        if result.outcome is Outcome.DONE and task is self._send:
            answer.set_result(result.upstream_id)
        try:
            return self._settle(task, post, result, attempt)
        except StateChanged:
            return StepResult(Step.FENCED)

    def _release(self, post: Post) -> None:
        """Give back a claim that was not sent; if that fails the post stays
        claimed, and the next run takes it over as after a crash."""
        try:
            self._store.release_claim(post, self._owner)
        except (StateChanged, StoreUnavailable) as exc:
            logger.warning("claim not released", extra={"post_id": post.id, "reason": str(exc)})

    def _send_in_slot(
        self, task: _SendPost | _DeleteCopy, post: Post, parent: str | None, previous_attempts: int
    ) -> SendResult | None:
        """The send, within REPLAY_CONCURRENCY sends in flight and at the
        gate's pace; None if the gate's next turn is past the deadline or
        the circuit opened meanwhile."""
        with self._send_slots:
            if not self._gate.wait_turn(self._give_up_at) or self.circuit.is_open:
                return None
            result = task.call(post, parent, previous_attempts)
            self._gate.observe(result.rate_limit, self._settings.replay_concurrency)
        return result

    def _settle(self, task: _SendPost | _DeleteCopy, post: Post, result: SendResult, attempt: int) -> StepResult:
        now = iso_at(self._wall_clock())
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
            task.dead(post, f"HTTP {result.status}: {result.detail}"[:FAILURE_REASON_MAX_CHARS], now)
            count("DeadLettered")
            logger.warning("post dead-lettered", extra={"post_id": post.id, "status": result.status})
            return StepResult(Step.DEAD)
        count("ReplayFailures")
        if result.outcome is Outcome.RETRY_AFTER:
            self._gate.pause_for(result.retry_after_seconds or 0.0)
            # A 429 is the primary pacing us; a 503 is the primary failing.
            self.circuit.record(success=result.status == TOO_MANY_REQUESTS)
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
