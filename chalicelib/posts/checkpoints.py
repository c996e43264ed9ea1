"""How far the S3 archive has got, per write shard: one DynamoDB item each.

Only the maintenance job's archive step reads and moves these; they sit
beside `posts.archive`, whose progress they record, not in the post store,
which never needs them.
"""

from __future__ import annotations

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error


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
