"""The primary's health: hysteresis over probe results (pure; the item
that keeps it in DynamoDB is `recovery.health_store`'s).

`observe` is the whole decision and is pure: `up` after HEALTH_UP_AFTER
consecutive successes, `down` after HEALTH_DOWN_AFTER consecutive failures,
so one lucky or unlucky probe never flips clients back and forth.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"
HISTORY_LENGTH = 20


@dataclass(frozen=True)
class HealthState:
    state: str = UNKNOWN
    since: str | None = None
    last_check_at: str | None = None
    successes: int = 0
    failures: int = 0
    # The last HISTORY_LENGTH transitions, oldest first: {"state", "at", "reason"}.
    history: list[dict] = field(default_factory=list)
    last_replay: dict | None = None
    version: int = 0

    def to_public(self) -> dict:
        return {
            "primary": self.state,
            "since": self.since,
            "last_check_at": self.last_check_at,
            "last_replay": self.last_replay,
        }


def observe(current: HealthState, healthy: bool, now: str, up_after: int, down_after: int) -> HealthState:
    """The state after one probe."""
    if healthy:
        checked = replace(current, last_check_at=now, successes=current.successes + 1, failures=0)
        if checked.state != UP and checked.successes >= up_after:
            return transition(checked, UP, now, f"{checked.successes} consecutive successful checks")
        return checked
    checked = replace(current, last_check_at=now, successes=0, failures=current.failures + 1)
    if checked.state != DOWN and checked.failures >= down_after:
        return transition(checked, DOWN, now, f"{checked.failures} consecutive failed checks")
    return checked


def transition(current: HealthState, state: str, now: str, reason: str) -> HealthState:
    history = [*current.history, {"state": state, "at": now, "reason": reason}][-HISTORY_LENGTH:]
    counters = {"successes": 0} if state == DOWN else {"failures": 0}
    return replace(current, state=state, since=now, history=history, **counters)
