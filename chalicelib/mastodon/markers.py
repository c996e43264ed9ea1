"""Mastodon's read markers (GET/POST /api/v1/markers): where a user stopped
reading their home timeline and notifications, so another app resumes there.

One item per user and timeline, `USER#<username>` / `MARKER#<timeline>`,
holding `last_read_id`, `updated_at` and `version` (ADD 1 on each save, as
Mastodon's lock_version). A read is one Query on the user's partition
(begins_with MARKER#: both timelines in 0.5 RCU); a save is one UpdateItem
per timeline named (docs/DESIGN.md, "Markers").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.errors import ValidationFailed

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


def render_marker(marker: Marker) -> dict:
    return {"last_read_id": marker.last_read_id, "version": marker.version, "updated_at": marker.updated_at}


class Markers:
    """GET and POST /api/v1/markers over the marker store."""

    def __init__(self, store: MarkerStore, clock: Callable[[], str]) -> None:
        self._store = store
        self._clock = clock

    def read(self, username: str, timelines: list[str]) -> dict:
        """The saved markers of the timelines asked for (none asked: none)."""
        asked = {timeline for timeline in timelines if timeline in TIMELINES}
        if not asked:
            return {}
        saved = self._store.markers(username)
        return {timeline: render_marker(saved[timeline]) for timeline in sorted(asked) if timeline in saved}

    def save(self, username: str, form: dict[str, list]) -> dict:
        """Save `home[last_read_id]` and/or `notifications[last_read_id]`
        (form fields, or nested JSON objects) and answer with the saved."""
        now = self._clock()
        saved = {}
        for timeline in TIMELINES:
            last_read_id = _last_read_id(form, timeline)
            if last_read_id is not None:
                saved[timeline] = render_marker(self._store.save(username, timeline, last_read_id, now))
        return saved


def _last_read_id(form: dict[str, list], timeline: str) -> str | None:
    values = form.get(f"{timeline}[last_read_id]")
    nested = form.get(timeline)
    if not values and nested and isinstance(nested[-1], dict):
        values = [nested[-1].get("last_read_id")]
    if not values:
        return None
    value = values[-1]
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value) or len(str(value)) > MAX_ID_CHARS:
        raise ValidationFailed(f"Validation failed: {timeline}[last_read_id] must be an id", code="invalid_marker")
    return str(value)
