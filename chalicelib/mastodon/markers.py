"""Mastodon's read markers (GET/POST /api/v1/markers): where a user stopped
reading their home timeline and notifications, so another app resumes there.

One item per user and timeline, `USER#<username>` / `MARKER#<timeline>`,
holding `last_read_id`, `updated_at` and `version` (ADD 1 on each save, as
Mastodon's lock_version). A read is one Query on the user's partition
(begins_with MARKER#: both timelines in 0.5 RCU); a save is one UpdateItem
per timeline named (docs/DESIGN.md, "Markers").
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error

TIMELINES = ("home", "notifications")
MARKER_PREFIX = "MARKER#"
MAX_ID_CHARS = 64


@dataclass(frozen=True)
class Marker:
    last_read_id: str
    updated_at: str
    version: int


class MarkerStore:
    def __init__(self, client, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def markers(self, username: str) -> dict[str, Marker]:
        """Every timeline's marker the user saved, by timeline."""
        with unavailable_as_domain_error("read markers"):
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
                ExpressionAttributeValues={":pk": {"S": f"USER#{username}"}, ":prefix": {"S": MARKER_PREFIX}},
            )
        found = {}
        for item in response["Items"]:
            values = dynamo.from_item(item)
            timeline = values["SK"].removeprefix(MARKER_PREFIX)
            found[timeline] = Marker(values["last_read_id"], values["updated_at"], int(values["version"]))
        return found

    def save(self, username: str, timeline: str, last_read_id: str, now: str) -> Marker:
        with unavailable_as_domain_error("save marker"):
            response = self._client.update_item(
                TableName=self._table,
                Key=dynamo.key(f"USER#{username}", MARKER_PREFIX + timeline),
                UpdateExpression="SET last_read_id = :id, updated_at = :now ADD version :one",
                ExpressionAttributeValues={":id": {"S": last_read_id}, ":now": {"S": now}, ":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
            )
        values = dynamo.from_item(response["Attributes"])
        return Marker(values["last_read_id"], values["updated_at"], int(values["version"]))
