"""The recovery job and its admin reads on in-memory fakes: health check,
lease, spool gate, replay and /status, with no AWS and no network."""

from __future__ import annotations

import threading

import pytest

from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.errors import Conflict, NotFound
from chalicelib.recovery.admin import RecoveryAdmin
from chalicelib.recovery.health import DOWN, UP, HealthState
from chalicelib.recovery.replay import StopReason
from chalicelib.recovery.service import LEASE_NAME, Recovery
from chalicelib.upstream.port import Outcome, SendResult
from devtools.fakes.posts import InMemorySpool, in_memory_stores
from devtools.fakes.recovery import InMemoryHealthStore, InMemoryLease, LeaseTable

WALL = 1_800_000_000.0
SETTINGS = Settings(
    table_name="t", bucket_name="b", admin_token_sha256="", health_up_after=1, replay_circuit_failures=2
)


class FakeTime:
    """A monotonic clock that only sleeping moves (thread-safe: the
    replay's workers share it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Primary:
    """Takes every post (or, with `failing`, answers 503), in the order sent."""

    def __init__(self, healthy: bool = True, failing: bool = False) -> None:
        self.healthy = healthy
        self.failing = failing
        self.sent: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def check_health(self) -> bool:
        return self.healthy

    def send(self, post) -> SendResult:
        if self.failing:
            return SendResult(Outcome.TRANSIENT, status=503)
        with self._lock:
            self.sent.append((post.id, post.in_reply_to))
            return SendResult(Outcome.DONE, upstream_id=f"up-{len(self.sent)}", status=201)


class World:
    def __init__(self, primary: Primary | None = None) -> None:
        self.posts, self.backlog = in_memory_stores()
        self.health = InMemoryHealthStore()
        self.leases = LeaseTable()
        self.spool = InMemorySpool()
        self.primary = primary or Primary()
        self.time = FakeTime()
        self._ids = ids.UlidFactory()

    def recovery(self, configured: bool = True) -> Recovery:
        lease = InMemoryLease(self.leases, LEASE_NAME, clock=lambda: WALL)
        return Recovery(
            self.backlog,
            self.health,
            lease,
            self.primary if configured else None,
            SETTINGS,
            wall_clock=lambda: WALL,
            clock=self.time.clock,
            sleep=self.time.sleep,
            spool=self.spool,
        )

    def admin(self) -> RecoveryAdmin:
        return RecoveryAdmin(self.backlog, self.health, SETTINGS, wall_clock=lambda: WALL)

    def post(self, author: str, in_reply_to: str | None = None) -> Post:
        post_id = self._ids.new()
        created = ids.iso_from_millis(ids.ulid_millis(post_id))
        post = Post(id=post_id, author=author, text="t", created_at=created, in_reply_to=in_reply_to)
        self.posts.create_post(post)
        return post


@pytest.fixture
def world() -> World:
    return World()


def test_a_run_with_the_primary_up_drains_the_backlog_in_each_authors_order(world):
    first, other = world.post("alice"), world.post("bob")
    reply = world.post("bob", in_reply_to=first.id)

    result = world.recovery().run(lambda: 60.0)

    assert result["primary"] == UP
    assert (result["replay"]["sent"], result["replay"]["stopped_because"]) == (3, StopReason.DRAINED)
    sent = [post_id for post_id, _ in world.primary.sent]
    assert sent.index(other.id) < sent.index(reply.id), "bob's posts went in order"
    assert dict(world.primary.sent)[reply.id] == "up-1", "the reply went with its parent's upstream id"
    assert world.backlog.backlog_size() == 0
    assert world.health.load().last_replay["sent"] == 3
    assert world.leases.holders == {}, "the lease was released"


def test_no_replay_while_the_spool_holds_posts(world):
    world.post("alice")
    world.spool.put(Post(id=ids.UlidFactory().new(), author="alice", text="s", created_at="x"), "f")

    result = world.recovery().run(lambda: 60.0)

    assert result["replay"]["stopped_because"] == StopReason.SPOOL_NOT_EMPTY
    assert world.primary.sent == []


def test_no_replay_while_another_run_holds_the_lease(world):
    world.post("alice")
    assert InMemoryLease(world.leases, LEASE_NAME, clock=lambda: WALL).acquire("other-run", 600)

    result = world.recovery().run(lambda: 60.0)

    assert result["replay"]["stopped_because"] == StopReason.LEASE_HELD
    assert world.primary.sent == []


def test_a_primary_that_keeps_failing_opens_the_circuit_and_is_marked_down(world):
    world.primary.failing = True
    world.post("alice")
    world.post("bob")

    result = world.recovery().run(lambda: 60.0)

    assert result["replay"]["stopped_because"] == StopReason.CIRCUIT_OPEN
    assert world.health.load().state == DOWN
    assert world.backlog.backlog_size() == 2


def test_a_replay_now_refuses_while_the_primary_is_not_up(world):
    world.primary.healthy = False
    world.post("alice")

    assert world.recovery().replay_now(lambda: 60.0) == {
        "primary": "unknown",
        "sent": 0,
        "stopped_because": StopReason.PRIMARY_NOT_UP,
    }
    assert world.primary.sent == []


def test_status_says_fallback_until_the_primary_is_up_then_recovering_then_normal(world):
    world.post("alice")
    assert world.admin().status()["mode"] == "fallback"

    world.health.save(HealthState(state=UP), 0)
    status = world.admin().status()
    assert (status["mode"], status["backlog"], status["dead_letters"]) == ("recovering", 1, 0)

    world.recovery().replay(lambda: 60.0)
    assert (world.admin().status()["mode"], world.admin().status()["oldest_pending_at"]) == ("normal", None)


def test_a_dry_run_lists_the_order_and_claims_nothing(world):
    first, second = world.post("alice"), world.post("alice")

    plan = world.admin().replay_plan()

    assert plan["dry_run"] is True and plan["stopped_because"] == StopReason.DRY_RUN
    assert [(step["id"], step["action"]) for step in plan["would_send"]] == [(first.id, "send"), (second.id, "send")]
    assert [post.state for post in world.backlog.backlog_window(100)] == ["pending", "pending"]


def test_a_dead_letter_is_listed_and_put_back_in_its_place(world):
    post = world.post("alice")
    world.backlog.claim_for_sending(post, "run-1", "now")
    world.backlog.mark_failed(post, "run-1", "HTTP 422: too long", "now")

    listed = world.admin().dead_letters(None, None)
    assert [(d["id"], d["failure_reason"]) for d in listed["dead_letters"]] == [(post.id, "HTTP 422: too long")]

    assert world.admin().retry_dead_letter(post.id)["state"] == "pending"
    with pytest.raises(NotFound):
        world.admin().retry_dead_letter(post.id)  # no longer a dead letter
    with pytest.raises(NotFound):
        world.admin().retry_dead_letter("not-an-id")


def test_a_replay_now_without_a_primary_is_a_conflict(world):
    with pytest.raises(Conflict):
        world.recovery(configured=False).replay_now(lambda: 60.0)
