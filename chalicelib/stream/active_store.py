"""The DynamoDB adapter of `stream.active`: the shards noted per minute and
the readers' cursors.

- `ACTIVE#<minute>#<split> / SHARDS`: `posts` and `mirrored`, number sets
  of the shards noted in that minute (epoch minutes), with `expires_at`
  (TTL, `NOTE_DAYS`). A note is one UpdateItem with ADD: idempotent.
- `ACTIVE#cursor#<reader> / CURSOR`: `through` and `carry` (a number set,
  absent when empty), one per reader.
"""

from __future__ import annotations

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.stream.active import SPLITS, Cursor

_BUCKET_SK = "SHARDS"
_CURSOR_SK = "CURSOR"


def bucket_key(minute: int, split: int) -> dict:
    return dynamo.key(f"ACTIVE#{minute}#{split}", _BUCKET_SK)


def cursor_key(reader: str) -> dict:
    return dynamo.key(f"ACTIVE#cursor#{reader}", _CURSOR_SK)


class DynamoActiveShards:
    def __init__(self, client, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def note(self, minute: int, split: int, shards: dict[str, set[int]], expires_at: int) -> None:
        kinds = {kind: found for kind, found in sorted(shards.items()) if found}
        if not kinds:
            return
        values = {f":{kind}": {"NS": [str(n) for n in sorted(found)]} for kind, found in kinds.items()}
        with unavailable_as_domain_error("note active shards"):
            self._client.update_item(
                TableName=self._table,
                Key=bucket_key(minute, split),
                UpdateExpression="ADD " + ", ".join(f"{kind} :{kind}" for kind in kinds) + " SET expires_at = :expires",
                ExpressionAttributeValues={**values, ":expires": {"N": str(expires_at)}},
            )

    def buckets(self, minutes: list[int]) -> dict[str, set[int]]:
        """The union of the shards noted in `minutes`, by kind: one
        BatchGetItem for up to 100 keys."""
        keys = [bucket_key(minute, split) for minute in minutes for split in range(SPLITS)]
        found: dict[str, set[int]] = {}
        for item in dynamo.batch_get(self._client, self._table, keys, "read active shards", consistent=True):
            for kind, shards in dynamo.from_item(item).items():
                if kind not in ("PK", "SK", "expires_at"):
                    found.setdefault(kind, set()).update(int(n) for n in shards)
        return found

    def cursor(self, reader: str) -> Cursor:
        with unavailable_as_domain_error("read active shards cursor"):
            response = self._client.get_item(TableName=self._table, Key=cursor_key(reader), ConsistentRead=True)
        if "Item" not in response:
            return Cursor()
        values = dynamo.from_item(response["Item"])
        return Cursor(int(values["through"]), frozenset(int(n) for n in values.get("carry", [])))

    def save_cursor(self, reader: str, cursor: Cursor) -> None:
        item = {**cursor_key(reader), "through": {"N": str(cursor.through)}}
        if cursor.carry:
            item["carry"] = {"NS": [str(n) for n in sorted(cursor.carry)]}
        with unavailable_as_domain_error("save active shards cursor"):
            self._client.put_item(TableName=self._table, Item=item)
