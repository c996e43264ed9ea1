"""How far the S3 archive has got, per write shard: one DynamoDB item each;
and the batch a run is writing (`ARCHIVE#PLAN / PLAN`), so that a run that
dies between its S3 write and its checkpoints is finished by the next one
with the same posts under the same names.

Only the maintenance job's archive step reads and moves these; they sit
beside `posts.archive`, whose progress they record, not in the post store,
which never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error

_PLAN_KEY = dynamo.key("ARCHIVE#PLAN", "PLAN")


@dataclass(frozen=True)
class ArchivePlan:
    """One run's batch: its object name and, per shard, the checkpoint it
    starts after and the last post it takes (both ends fix its posts)."""

    name: str
    ranges: dict[int, tuple[str, str]]


def _checkpoint_key(shard: int) -> dict:
    return dynamo.key(f"ARCHIVE#{shard}", "CHECKPOINT")


class ArchiveCheckpoints:
    """The last archived post id of each shard ("" before the first batch)."""

    def __init__(self, client, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, shard: int) -> str:
        with unavailable_as_domain_error("read archive checkpoint"):
            response = self._client.get_item(TableName=self._table, Key=_checkpoint_key(shard), ConsistentRead=True)
        return dynamo.from_item(response["Item"])["last_id"] if "Item" in response else ""

    def advance(self, shard: int, old: str, new: str) -> bool:
        """Move the checkpoint from `old` to `new`; False if an overlapping
        run moved it first (it archived the same posts under the same keys)."""
        condition = "attribute_not_exists(PK)" if not old else "last_id = :old"
        values = {":new": {"S": new}} | ({":old": {"S": old}} if old else {})
        try:
            with unavailable_as_domain_error("advance archive checkpoint"):
                self._client.update_item(
                    TableName=self._table,
                    Key=_checkpoint_key(shard),
                    UpdateExpression="SET last_id = :new",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- the batch being written ------------------------------------------------

    def plan(self) -> ArchivePlan | None:
        with unavailable_as_domain_error("read archive plan"):
            response = self._client.get_item(TableName=self._table, Key=_PLAN_KEY, ConsistentRead=True)
        if "Item" not in response:
            return None
        values = dynamo.from_item(response["Item"])
        ranges = {int(shard): (bounds[0], bounds[1]) for shard, bounds in values["ranges"].items()}
        return ArchivePlan(values["name"], ranges)

    def save_plan(self, plan: ArchivePlan) -> ArchivePlan:
        """Record the plan, or return the one an overlapping run recorded first."""
        ranges = {str(shard): list(bounds) for shard, bounds in plan.ranges.items()}
        item = {**_PLAN_KEY, **dynamo.to_item({"name": plan.name, "ranges": ranges})}
        try:
            with unavailable_as_domain_error("save archive plan"):
                self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except self._client.exceptions.ConditionalCheckFailedException:
            return self.plan() or plan
        return plan

    def clear_plan(self, plan: ArchivePlan) -> None:
        try:
            with unavailable_as_domain_error("clear archive plan"):
                self._client.delete_item(
                    TableName=self._table,
                    Key=_PLAN_KEY,
                    ConditionExpression="#name = :name",
                    ExpressionAttributeNames={"#name": "name"},
                    ExpressionAttributeValues={":name": {"S": plan.name}},
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return
