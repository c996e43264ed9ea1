"""The DynamoDB item that keeps the primary's health (`recovery.health`)."""

from __future__ import annotations

from dataclasses import asdict

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.recovery.health import HealthState

_KEY = ("HEALTH#primary", "STATE")


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
