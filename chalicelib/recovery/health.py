"""The primary's health: hysteresis over probe results, kept in DynamoDB.

`observe` is the whole decision and is pure: `up` after HEALTH_UP_AFTER
consecutive successes, `down` after HEALTH_DOWN_AFTER consecutive failures,
so one lucky or unlucky probe never flips clients back and forth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"
HISTORY_LENGTH = 20
_KEY = ("HEALTH#primary", "STATE")


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


class HealthStore:
    """One item holds the state, its history and the last replay's report.
    Writes are conditional on the version read (optimistic locking), so two
    overlapping runs cannot both count the same streak."""

    def __init__(self, client, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self) -> HealthState:
        with unavailable_as_domain_error("read health"):
            response = self._client.get_item(TableName=self._table, Key=dynamo.key(*_KEY), ConsistentRead=True)
        if "Item" not in response:
            return HealthState()
        values = dynamo.from_item(response["Item"])
        known = {name: values[name] for name in HealthState.__dataclass_fields__ if name in values}
        return HealthState(**known)

    def save(self, new: HealthState, expected_version: int) -> bool:
        """False if another run saved first (then its view stands)."""
        item = {"PK": _KEY[0], "SK": _KEY[1], **asdict(new), "version": expected_version + 1}
        condition = "attribute_not_exists(PK)" if expected_version == 0 else "version = :v"
        extra = {} if expected_version == 0 else {"ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
        try:
            with unavailable_as_domain_error("save health"):
                self._client.put_item(
                    TableName=self._table, Item=dynamo.to_item(item), ConditionExpression=condition, **extra
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_replay(self, report: dict) -> None:
        with unavailable_as_domain_error("record replay"):
            self._client.update_item(
                TableName=self._table,
                Key=dynamo.key(*_KEY),
                UpdateExpression="SET last_replay = :report",
                ExpressionAttributeValues={":report": dynamo.to_item({"r": report})["r"]},
            )
