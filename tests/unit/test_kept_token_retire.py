"""When the replay retires the authors' kept primary tokens (issue 11): only
a run that read the whole backlog empty, with the settle time taken off
the moment it read it, within the run's deadline, and never failing the
run when the store cannot answer. In-memory fakes, a fake clock."""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.clock import iso_at
from chalicelib.core.models import Post
from chalicelib.errors import StoreUnavailable
from chalicelib.recovery.replay import StopReason
from chalicelib.recovery.service import LEASE_NAME, Recovery
from devtools.fakes.recovery import InMemoryLease
from tests.unit.test_recovery_job import WALL, World

SETTLE = 60
SETTINGS = Settings(
    table_name="t", bucket_name="b", admin_token_sha256="", health_up_after=1, archive_settle_seconds=SETTLE
)


class KeptTokens:
    """Records each retire; retires `tokens` while the caller lets it go on."""

    def __init__(self, tokens: int = 0, failing: bool = False) -> None:
        self.asked: list[str] = []
        self.tokens = tokens
        self.failing = failing

    def retire(self, quiet_before: str, keep_going) -> int:
        self.asked.append(quiet_before)
        if self.failing:
            raise StoreUnavailable("list kept tokens: DynamoDB is away")
        retired = 0
        while retired < self.tokens and keep_going():
            retired += 1
        return retired


def recovery(world: World, kept: KeptTokens) -> Recovery:
    lease = InMemoryLease(world.leases, LEASE_NAME, clock=lambda: WALL)
    return Recovery(
        world.backlog,
        world.health,
        lease,
        world.primary,
        SETTINGS,
        wall_clock=lambda: WALL,
        clock=world.time.clock,
        sleep=world.time.sleep,
        spool=world.spool,
        kept_tokens=kept,
    )


def test_a_drained_run_retires_tokens_of_authors_quiet_since_the_empty_window_less_the_settle_time():
    world, kept = World(), KeptTokens(tokens=3)
    world.post("alice")

    report = recovery(world, kept).run(lambda: 60.0)["replay"]

    assert (report["sent"], report["stopped_because"]) == (1, StopReason.DRAINED)
    assert kept.asked == [iso_at(WALL - SETTLE)]


def test_no_retire_while_the_spool_holds_posts_or_folded_authors_wait():
    world, kept = World(), KeptTokens(tokens=3)
    world.post("alice")
    world.post("bob")
    world.spool.put(Post(id=ids.UlidFactory().new(), author="bob", text="s", created_at="x"), "f")
    assert recovery(world, kept).run(lambda: 60.0)["replay"]["stopped_because"] == StopReason.SPOOL_NOT_EMPTY

    world.spool.delete(world.spool.keys(1)[0])
    held = recovery(world, kept).run(lambda: 60.0, hold_authors=frozenset({"alice", "bob"}))["replay"]

    assert held["stopped_because"] == StopReason.FOLDED_AUTHORS_WAIT
    assert kept.asked == []


class EndlessKeptTokens:
    """More tokens than any run has time for; one second of the clock each."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.stopped_at: list[float] = []

    def retire(self, quiet_before: str, keep_going) -> int:
        retired = 0
        while keep_going():
            self.world.time.sleep(1.0)
            retired += 1
        self.stopped_at.append(self.world.time.clock())
        return retired


def test_retiring_stops_at_the_runs_deadline():
    world = World()
    kept = EndlessKeptTokens(world)
    started = world.time.clock()

    # No backlog: the run drains at once, and only the deadline stops retiring.
    assert recovery(world, kept).run(lambda: 30.0)["replay"]["stopped_because"] == StopReason.DRAINED
    assert kept.stopped_at == [started + 30.0 - SETTINGS.replay_safety_margin_seconds]


def test_a_store_that_cannot_answer_leaves_the_tokens_for_a_later_run():
    world, kept = World(), KeptTokens(failing=True)
    world.post("alice")

    report = recovery(world, kept).run(lambda: 60.0)["replay"]

    assert (report["sent"], report["stopped_because"]) == (1, StopReason.DRAINED)
    assert len(kept.asked) == 1
