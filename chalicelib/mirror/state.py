"""The mirror's progress in one item, `MIRROR / STATE`: the feed cursor,
when the feed's end was last reached, the counts `/status` shows, the last
error, the mirror version and the time it last moved (feed validators fold
both in: docs/DESIGN.md, "Feeds of mirrored posts"), when the last outage
began (posts created since may be our own replays) and how far the S3 inbox
has read the object it is part-way through (`inbox`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.core.clock import iso_at

STATE_KEY = ("MIRROR", "STATE")


@dataclass(frozen=True)
class InboxPosition:
    """Where the inbox stopped in an object it did not finish: the byte
    `offset` where its next line starts (`line`: lines read before it), for
    the object's version `etag` (a replaced object starts over)."""

    key: str
    etag: str
    offset: int
    line: int


@dataclass(frozen=True)
class MirrorState:
    cursor: str | None = None
    cursor_at: str | None = None
    accounts: int = 0
    posts: int = 0
    malformed: int = 0
    last_error: str | None = None
    version: int = 0
    changed_at: str | None = None  # when `version` last moved
    outage_began_at: str | None = None
    # When the replay last sent posts: the primary may still be about to
    # show them in its feed, so the outage mark stays a while after.
    last_replay_at: str | None = None
    inbox: InboxPosition | None = None


@dataclass(frozen=True)
class Progress:
    """What one page moved: the new cursor (None for an inbox batch, which
    leaves the feed's cursor and last error alone), the counts to add, and
    whether the feed's end was reached (`reached_end_at`)."""

    cursor: str | None
    accounts: int = 0
    posts: int = 0
    malformed: int = 0
    changed: bool = False
    reached_end_at: str | None = None


def state_from_item(item: dict) -> MirrorState:
    """The state from its raw item (empty: never written), read alone or in
    another read's BatchGetItem (/status)."""
    values = dynamo.from_item(item)
    known = {name: values[name] for name in MirrorState.__dataclass_fields__ if name in values}
    if "inbox" in known:
        known["inbox"] = InboxPosition(**known["inbox"])
    return MirrorState(**known)


class MirrorStateStore:
    """DynamoDB adapter for the mirror's one item. Takes its client."""

    def __init__(self, client, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def load(self) -> MirrorState:
        with unavailable_as_domain_error("read mirror state"):
            response = self._client.get_item(TableName=self._table, Key=dynamo.key(*STATE_KEY), ConsistentRead=True)
        return state_from_item(response.get("Item", {}))

    def record(self, progress: Progress, inbox: InboxPosition | None = None) -> None:
        """One UpdateItem per page: the cursor, the counts, the version if
        the page changed what a timeline shows (with the time, stamped after
        the page's writes were acknowledged: feeds measure the settle time
        from it), the end if reached, and no last error (this page was read).
        An inbox batch sets no cursor and keeps the feed's last error, but
        moves `inbox` with its counts."""
        values = {
            ":accounts": {"N": str(progress.accounts)},
            ":posts": {"N": str(progress.posts)},
            ":malformed": {"N": str(progress.malformed)},
            ":version": {"N": "1" if progress.changed else "0"},
        }
        names = {}
        sets = []
        if progress.cursor is not None:
            sets.append("#cursor = :cursor")
            values[":cursor"] = {"S": progress.cursor}
            names["#cursor"] = "cursor"
        if progress.changed:
            sets.append("changed_at = :changed_at")
            values[":changed_at"] = {"S": iso_at(self._clock())}
        if progress.reached_end_at:
            sets.append("cursor_at = :end")
            values[":end"] = {"S": progress.reached_end_at}
        if inbox is not None:
            sets.append("inbox = :inbox")
            values[":inbox"] = {"M": dynamo.to_item(asdict(inbox))}
        update = f"SET {', '.join(sets)} " if sets else ""
        update += "ADD accounts :accounts, posts :posts, malformed :malformed, version :version"
        if progress.cursor is not None:
            update += " REMOVE last_error"
        self._update(update, values, names)

    def inbox_done(self) -> None:
        """The inbox finished its object: no position to resume from."""
        self._update("REMOVE inbox", None)

    def record_error(self, error: str) -> None:
        self._update("SET last_error = :error", {":error": {"S": error[:500]}})

    def note_outage(self, began_at: str) -> None:
        """The first moment an outage was seen, kept until `outage_over`."""
        self._update("SET outage_began_at = if_not_exists(outage_began_at, :at)", {":at": {"S": began_at}})

    def note_replay(self, since: str, replayed_at: str) -> None:
        """The replay sent posts at or after `since`: mark them as an outage
        does, and remember when."""
        self._update(
            "SET outage_began_at = if_not_exists(outage_began_at, :at), last_replay_at = :now",
            {":at": {"S": since}, ":now": {"S": replayed_at}},
        )

    def outage_over(self) -> None:
        self._update("REMOVE outage_began_at, last_replay_at", None)

    def _update(self, expression: str, values: dict | None, names: dict | None = None) -> None:
        extra = {"ExpressionAttributeValues": values} if values else {}
        if names:
            extra["ExpressionAttributeNames"] = names
        with unavailable_as_domain_error("write mirror state"):
            self._client.update_item(
                TableName=self._table, Key=dynamo.key(*STATE_KEY), UpdateExpression=expression, **extra
            )
