"""The pure parts of recovery: health hysteresis, lane scheduling, pacing."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.recovery.health import DOWN, HISTORY_LENGTH, UNKNOWN, UP, HealthState, observe, transition
from chalicelib.recovery.pacing import Circuit, RateGate
from chalicelib.recovery.replay import ReplayReport, ReplayRun, StepResult, StopReason
from chalicelib.recovery.schedule import author_lanes, mode_for, ready_heads
from chalicelib.upstream.port import Outcome, RateLimit, SendResult
from devtools.fakes.posts import InMemoryBacklogStore, in_memory_stores

T = "2026-11-23T00:00:00.000Z"


def run(state: HealthState, results: str, up_after=3, down_after=2) -> HealthState:
    for ok in results:
        state = observe(state, ok == "+", T, up_after, down_after)
    return state


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ("", UNKNOWN),
        ("++", UNKNOWN),
        ("+++", UP),
        ("-", UNKNOWN),
        ("--", DOWN),
        ("++-++", UNKNOWN),
        ("+++-", UP),
        ("+++--", DOWN),
        ("+++-+-", UP),
        ("--++", DOWN),
        ("--+++", UP),
    ],
)
def test_health_needs_consecutive_results_to_flip(results, expected):
    assert run(HealthState(), results).state == expected


def test_transitions_are_recorded_with_their_time_and_history_is_bounded():
    state = run(HealthState(), "+++--" * 15)
    assert len(state.history) == HISTORY_LENGTH
    assert [entry["state"] for entry in state.history[-2:]] == [UP, DOWN]
    assert state.since == T and state.last_check_at == T


def test_a_forced_transition_resets_the_streak():
    up = run(HealthState(), "+++")
    down = transition(up, DOWN, T, "circuit opened")
    assert down.state == DOWN and down.successes == 0
    assert run(down, "++").state == DOWN
    assert run(down, "+++").state == UP


@pytest.mark.parametrize(
    ("primary", "backlog", "mode"),
    [(UNKNOWN, 0, "fallback"), (DOWN, 5, "fallback"), (UP, 5, "recovering"), (UP, 0, "normal")],
)
def test_mode_tells_clients_when_to_switch_back(primary, backlog, mode):
    assert mode_for(primary, backlog) == mode


def post(post_id: str, author: str, parent: str | None = None) -> Post:
    return Post(id=post_id, author=author, text="t", created_at=T, in_reply_to=parent)


def test_lanes_keep_each_authors_posts_oldest_first():
    lanes = author_lanes([post("03", "b"), post("01", "a"), post("04", "a"), post("02", "b")])
    assert {author: [p.id for p in lane] for author, lane in lanes.items()} == {"a": ["01", "04"], "b": ["02", "03"]}


def test_only_the_head_of_an_idle_lane_is_ready():
    lanes = author_lanes([post("01", "a"), post("02", "a"), post("03", "b"), post("04", "c")])
    ready = ready_heads(lanes, busy_authors={"c"}, unresolved={"01", "02", "03", "04"}, not_before={}, now=0)
    assert [p.id for p in ready] == ["01", "03"]


def test_a_reply_waits_for_its_parent_by_another_author():
    lanes = author_lanes([post("01", "a"), post("02", "b", parent="01")])
    assert [p.id for p in ready_heads(lanes, set(), {"01", "02"}, {}, 0)] == ["01"]
    lanes["a"].popleft()
    assert [p.id for p in ready_heads(lanes, set(), {"02"}, {}, 0)] == ["02"]


def test_the_delete_of_a_replys_copy_does_not_wait_for_its_parent():
    reply_copy = post("02", "b", parent="01").with_changes(state="delete_pending")
    lanes = author_lanes([post("01", "a"), reply_copy])
    assert [p.id for p in ready_heads(lanes, set(), {"01", "02"}, {}, 0)] == ["01", "02"]


def test_a_post_in_backoff_holds_its_lane():
    lanes = {"a": deque([post("01", "a"), post("02", "a")])}
    assert ready_heads(lanes, set(), {"01", "02"}, {"01": 10.0}, now=5.0) == []
    assert [p.id for p in ready_heads(lanes, set(), {"01", "02"}, {"01": 10.0}, now=10.0)] == ["01"]


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_gate_spaces_sends_at_the_rate_cap():
    fake = FakeTime()
    gate = RateGate(10, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        assert gate.wait_turn(give_up_at=1000)
    assert fake.now == pytest.approx(100.4)


def test_the_gate_honours_retry_after_and_gives_up_at_the_deadline():
    fake = FakeTime()
    gate = RateGate(100, clock=fake.clock, sleep=fake.sleep)
    gate.pause_for(30)
    assert not gate.wait_turn(give_up_at=fake.now + 10)
    assert gate.wait_turn(give_up_at=fake.now + 31)
    assert fake.now == pytest.approx(130)


def test_the_gate_paces_evenly_under_the_primarys_stated_limit():
    fake = FakeTime()
    gate = RateGate(100, clock=fake.clock, sleep=fake.sleep)
    gate.observe(RateLimit(limit=50, remaining=40, reset_after_seconds=5.0), in_flight=2)  # 50 per 5 s window
    for _ in range(11):
        gate.wait_turn(1000)
    assert fake.now - 100 == pytest.approx(10 / (0.95 * 10))


def test_a_rounded_reset_does_not_slow_the_pace_within_the_window():
    fake = FakeTime()
    gate = RateGate(1000, clock=fake.clock, sleep=fake.sleep)
    gate.observe(RateLimit(limit=200, remaining=199, reset_after_seconds=1.0), in_flight=1)
    gate.observe(RateLimit(limit=200, remaining=60, reset_after_seconds=1.0), in_flight=8)  # ceil(0.3 s) = 1
    for _ in range(191):
        gate.wait_turn(1000)
    assert fake.now - 100 == pytest.approx(190 / 190)


def test_without_a_stated_limit_the_gate_spreads_what_remains():
    fake = FakeTime()
    gate = RateGate(100, clock=fake.clock, sleep=fake.sleep)
    gate.observe(RateLimit(limit=None, remaining=12, reset_after_seconds=5.0), in_flight=2)  # 10 left over 5 s
    gate.wait_turn(1000)
    gate.wait_turn(1000)
    assert fake.now - 100 == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("limit", "remaining", "in_flight"),
    [(100, 0, 1), (None, 3, 4)],  # a spent window; or what remains is already in flight
)
def test_the_gate_pauses_until_reset_when_the_budget_is_spent(limit, remaining, in_flight):
    fake = FakeTime()
    gate = RateGate(100, clock=fake.clock, sleep=fake.sleep)
    gate.observe(RateLimit(limit=limit, remaining=remaining, reset_after_seconds=2.0), in_flight=in_flight)
    gate.wait_turn(1000)
    assert fake.now == pytest.approx(102)


def test_the_circuit_opens_after_consecutive_failures_only():
    circuit = Circuit(threshold=3)
    for success in (False, False, True, False, False):
        circuit.record(success)
    assert not circuit.is_open
    circuit.record(False)
    assert circuit.is_open
    circuit.record(True)
    assert circuit.is_open  # stays open for the rest of the run


# -- a run on a fake clock ----------------------------------------------------------


class TickingTime:
    """A clock that moves only when slept on, or by `tick` per reading, so a
    loop that spins without sleeping still reaches its deadline (and a test
    of it ends). Thread-safe: the replay's workers read it too."""

    def __init__(self, tick: float = 0.001) -> None:
        self.now = 1000.0
        self.tick = tick
        self.slept = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            self.now += self.tick
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept += seconds
            self.now += seconds


class PacedPrimary:
    """Answers every send with a 429 that asks for `retry_after` seconds;
    notes when each send came (on `clock`)."""

    def __init__(self, retry_after: float, clock=lambda: 0.0) -> None:
        self.retry_after = retry_after
        self.clock = clock
        self.sent: list[str] = []
        self.sent_at: list[float] = []

    def check_health(self) -> bool:
        return True

    def send(self, post) -> SendResult:
        self.sent.append(post.id)
        self.sent_at.append(self.clock())
        return SendResult(Outcome.RETRY_AFTER, retry_after_seconds=self.retry_after, status=429)


class CountingRun(ReplayRun):
    """Counts what the coordinator hands to its workers."""

    dispatched = 0

    def _attempt(self, *args) -> StepResult:
        self.dispatched += 1
        return super()._attempt(*args)


def backlog_of(authors: str, each: int = 2) -> InMemoryBacklogStore:
    posts, backlog = in_memory_stores()
    factory = ids.UlidFactory()
    for _ in range(each):
        for author in authors:
            post_id = factory.new()
            posts.create_post(Post(id=post_id, author=author, text="t", created_at=T))
    return backlog


def fake_clock_run(store, primary, fake: TickingTime, seconds_left: float, concurrency: int) -> CountingRun:
    settings = Settings(table_name="t", bucket_name="b", admin_token_sha256="", replay_concurrency=concurrency)
    return CountingRun(store, primary, settings, "run-1", fake.now + seconds_left, clock=fake.clock, sleep=fake.sleep)


def test_a_retry_after_past_the_deadline_stops_the_run_instead_of_spinning():
    # Given three authors, one sender, and a primary that asks for 900 s
    # when the run has 60 s left,
    fake = TickingTime()
    store = backlog_of("abc")
    primary = PacedPrimary(retry_after=900)
    run = fake_clock_run(store, primary, fake, seconds_left=60, concurrency=1)
    report = ReplayReport(started=T)

    # when the run sends its window,
    stopped = run.send_window(store.backlog_window(100), report)

    # then it stops at once, having dispatched a handful of heads, not tens of
    # thousands, and slept for nothing like the 60 s left.
    assert stopped == StopReason.WAIT_PAST_DEADLINE
    assert run.dispatched <= 3
    assert primary.sent == [store.backlog_window(100)[0].id]
    assert fake.slept < 1.0
    assert (report.sent, report.retries) == (0, 1)
    # The posts stay in the backlog for the next run; none was claimed but the one sent.
    assert [post.state for post in store.backlog_window(100)] == ["sending"] + ["pending"] * 5


def test_a_lone_author_asked_to_wait_past_the_deadline_does_not_sleep_until_it():
    fake = TickingTime()
    store = backlog_of("a")
    run = fake_clock_run(store, PacedPrimary(retry_after=900), fake, seconds_left=60, concurrency=4)

    stopped = run.send_window(store.backlog_window(100), ReplayReport(started=T))

    assert stopped == StopReason.WAIT_PAST_DEADLINE
    assert fake.slept < 1.0, "nothing can be sent before the deadline: the run ends instead of idling to it"


def test_a_retry_after_within_the_deadline_is_waited_for_on_the_injected_clock():
    class PacedOnce(PacedPrimary):
        def send(self, post) -> SendResult:
            if self.sent:
                self.sent.append(post.id)
                self.sent_at.append(self.clock())
                return SendResult(Outcome.DONE, upstream_id=str(len(self.sent)), status=201)
            return super().send(post)

    fake = TickingTime()
    store = backlog_of("a")
    primary = PacedOnce(retry_after=20, clock=fake.clock)
    run = fake_clock_run(store, primary, fake, seconds_left=60, concurrency=1)

    stopped = run.send_window(store.backlog_window(100), ReplayReport(started=T))

    assert stopped is None
    assert len(primary.sent) == 3 and store.backlog_size() == 0
    assert 20 <= primary.sent_at[1] - primary.sent_at[0] < 21, "the resend waited for the Retry-After, no longer"


class HeldConfirms(InMemoryBacklogStore):
    """Holds every grouped confirm until `release` is set."""

    def __init__(self, table) -> None:
        super().__init__(table)
        self.release = threading.Event()

    def mark_many_replayed(self, sent, owner, at):
        assert self.release.wait(10), "the test never released the confirms"
        return super().mark_many_replayed(sent, owner, at)


class TakingPrimary:
    """Takes every post; `sent` in the order they came."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.second_sent = threading.Event()

    def send(self, post) -> SendResult:
        self.sent.append(post.id)
        if len(self.sent) == 2:
            self.second_sent.set()
        return SendResult(Outcome.DONE, upstream_id=f"up-{post.id}", status=201)


def test_an_authors_next_post_goes_once_the_primary_took_the_last_not_once_it_is_confirmed():
    # Given one author's two posts, and a store that holds the confirms,
    posts, _ = in_memory_stores()
    store = HeldConfirms(posts.table)
    factory = ids.UlidFactory()
    for _ in range(2):
        posts.create_post(Post(id=factory.new(), author="a", text="t", created_at=T))
    window = store.backlog_window(100)
    primary = TakingPrimary()
    settings = Settings(table_name="t", bucket_name="b", admin_token_sha256="", replay_concurrency=1)
    run = ReplayRun(store, primary, settings, "run-1", give_up_at=float("inf"))
    report = ReplayReport(started=T)

    # when the run sends them,
    sender = threading.Thread(target=run.send_window, args=(window, report))
    sender.start()

    # then the second goes while the first's confirm is still held, after the first,
    assert primary.second_sent.wait(10)
    assert primary.sent == [post.id for post in window]
    assert report.sent == 0
    # and the run ends only once both are confirmed.
    store.release.set()
    sender.join(10)
    assert report.sent == 2
    assert [store.get_post(post.id).state for post in window] == ["replayed", "replayed"]
