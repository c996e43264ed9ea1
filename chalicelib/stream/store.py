"""The DynamoDB adapter of the stream consumer: claimed runs of records
applied to the status shards, the authors' feed markers and the dirty
feed shards in one transaction each; the oldest pending post; the rate
limit's post windows (string sets, outside the runs); and the one read of
it all that `/status` and the public feed marker make.

The key layout is `stream.layout`'s (the post windows' is
`accounts.rate_limits`', whose request path reads them); docs/DESIGN.md ("The stream") has the
argument for why every effect holds under redelivery and reordering.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chalicelib.accounts.rate_limits import posts_window_update
from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.feeds.markers import FEED_CHANGED_AT, FEED_VERSION, LAST_DELETED_ID, LAST_POST_ID
from chalicelib.posts.items import shard_of
from chalicelib.stream import layout
from chalicelib.stream.effects import COUNTED_STATES, Effects, FeedLane
from chalicelib.stream.post_windows import PostWindowTags

# `IN` takes at most 100 operands.
_IN_MAX = 99
# The post windows' UpdateItems of one batch run in parallel: a batch of
# 1000 records may name as many authors.
_WINDOW_WRITERS = 16


@dataclass(frozen=True)
class Run:
    """A run of stream records: its claim (the first record's event id), the
    post that record names (it picks the status item: a post's changes,
    one record to a run, meet on the same item, as a feed lane wants), how
    many records it has and how many an earlier delivery applied."""

    claim_id: str
    first_post_id: str
    records: int
    applied: int = 0


class AlreadyApplied(Exception):
    """The run's claim exists: `records` of its records were applied."""

    def __init__(self, records: int) -> None:
        super().__init__(f"{records} records applied already")
        self.records = records


@dataclass(frozen=True)
class StreamStatus:
    """The counts and the oldest pending post, as the stream has applied them."""

    pending: int = 0
    deletes: int = 0
    dead_letters: int = 0
    oldest_pending_id: str | None = None
    oldest_stale: bool = False


def status_from_items(items: list[dict]) -> StreamStatus:
    """The status from the raw items of `status_keys()` (others are ignored)."""
    totals = dict.fromkeys(COUNTED_STATES, 0)
    oldest: dict = {}
    for item in items:
        values = dynamo.from_item(item)
        if layout.is_status_shard(values["PK"]):
            for name in totals:
                totals[name] += values.get(name, 0)
        elif dynamo.key(values["PK"], values["SK"]) == layout.oldest_key():
            oldest = values
    return StreamStatus(
        pending=max(0, totals["pending"]),
        deletes=max(0, totals["deletes"]),
        dead_letters=max(0, totals["dead_letters"]),
        oldest_pending_id=oldest.get("oldest"),
        oldest_stale=bool(oldest.get("stale", False)),
    )


def status_keys() -> list[dict]:
    return [*layout.status_shard_keys(), layout.oldest_key()]


class StreamStore:
    """Takes its client, like every adapter."""

    def __init__(self, client, table_name: str, shards: int) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards

    # -- a claimed run -----------------------------------------------------------

    def apply(self, run: Run, effects: Effects, changed_at: str, now: int) -> None:
        """Apply `effects` (those of the run's records after the first
        `run.applied`) and record that all its records are applied, in one
        transaction. Raises AlreadyApplied if the claim says otherwise
        (the run, or part of it, was delivered before)."""
        items = [
            self._claim(run.claim_id, run.applied, run.records, now),
            self._status_update(layout.status_shard_of(run.first_post_id), effects, changed_at),
            *(
                self._author_update(author, effect.lane, effect.posts, changed_at)
                for author, effect in effects.authors.items()
            ),
            *self._dirty_updates(effects.deleted),
        ]
        try:
            dynamo.transact(self._client, items, "apply stream records")
        except dynamo.TransactionCancelled as cancelled:
            if not cancelled.failed(0):
                raise
            old = cancelled.old_items[0] or {}
            raise AlreadyApplied(int(old.get("records", 0))) from cancelled

    def _claim(self, claim_id: str, applied: int, records: int, now: int) -> dict:
        key = layout.claim_key(claim_id)
        if applied == 0:
            item = {**key, **dynamo.to_item({"records": records, "expires_at": now + layout.CLAIM_DAYS * 86_400})}
            return {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(PK)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        return {
            "Update": {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": "SET records = :records",
                "ConditionExpression": "records = :applied",
                "ExpressionAttributeValues": {":records": {"N": str(records)}, ":applied": {"N": str(applied)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _status_update(self, shard: int, effects: Effects, changed_at: str) -> dict:
        adds = {name: delta for name, delta in effects.counts.items()}
        return self._update(layout.status_shard_key(shard), adds, effects.public, changed_at)

    def _author_update(self, author: str, lane: FeedLane, posts: int, changed_at: str) -> dict:
        return self._update(dynamo.key(f"USER#{author}", "PROFILE"), {"posts_count": posts}, lane, changed_at)

    def _update(self, key: dict, adds: dict[str, int], lane: FeedLane, changed_at: str) -> dict:
        """ADD the counts (and the lane's changes to the feed version); SET
        the change time and the lane's newest ids when the lane moved."""
        adds = {**adds, FEED_VERSION: lane.changes}
        values = {f":{name}": {"N": str(delta)} for name, delta in adds.items()}
        expression = "ADD " + ", ".join(f"{name} :{name}" for name in adds)
        sets = {}
        if lane.changes:
            sets[FEED_CHANGED_AT] = changed_at
        if lane.last_added:
            sets[LAST_POST_ID] = lane.last_added
        if lane.last_deleted:
            sets[LAST_DELETED_ID] = lane.last_deleted
        if sets:
            expression += " SET " + ", ".join(f"{name} = :{name}" for name in sets)
            values |= {f":{name}": {"S": value} for name, value in sets.items()}
        return {
            "Update": {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": expression,
                "ExpressionAttributeValues": values,
            }
        }

    def _dirty_updates(self, deleted: list[tuple[str, str]]) -> list[dict]:
        """The authors whose feed lost a post, added to the dirty feed shard
        of each lost post (a string set: adding again changes nothing)."""
        by_shard: dict[int, set[str]] = {}
        for author, post_id in deleted:
            by_shard.setdefault(shard_of(post_id, self._shards), set()).add(author)
        return [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": dynamo.key(f"FEEDS#dirty#{shard}", "USERS"),
                    "UpdateExpression": "ADD #users :users",
                    "ExpressionAttributeNames": {"#users": "users"},
                    "ExpressionAttributeValues": {":users": {"SS": sorted(authors)}},
                }
            }
            for shard, authors in sorted(by_shard.items())
        ]

    # -- the rate limit's post windows ---------------------------------------------

    def count_posts(self, windows: PostWindowTags) -> None:
        """Add each window's tags to its set: one UpdateItem (1 write unit
        while the set is under 1 KB) per author and minute, in parallel."""

        def one(window: tuple[tuple[str, int], set[str]]) -> None:
            (author, minute), tags = window
            with unavailable_as_domain_error("count posts in a window"):
                self._client.update_item(**posts_window_update(self._table, author, minute, tags))

        if len(windows) <= 1:
            for window in windows.items():
                one(window)
            return
        with ThreadPoolExecutor(max_workers=min(len(windows), _WINDOW_WRITERS)) as pool:
            list(pool.map(one, windows.items()))

    # -- the oldest pending post ---------------------------------------------------

    def oldest(self) -> tuple[str | None, bool]:
        """The recorded oldest pending post and whether it is stale (one
        consistent read: cheaper than a conditional write that fails)."""
        with unavailable_as_domain_error("read oldest pending"):
            response = self._client.get_item(TableName=self._table, Key=layout.oldest_key(), ConsistentRead=True)
        values = dynamo.from_item(response.get("Item", {}))
        return values.get("oldest"), bool(values.get("stale", False))

    def lower_oldest(self, post_id: str) -> None:
        """The oldest pending post is `post_id` if it is older than the one
        recorded (min: the same whatever order the records come in)."""
        self._conditional_oldest(
            "SET oldest = :id",
            "attribute_not_exists(oldest) OR oldest > :id",
            {":id": {"S": post_id}},
        )

    def mark_oldest_left(self, post_ids: list[str]) -> None:
        """If the recorded oldest post is one of `post_ids` (which left the
        backlog), it is stale: the next maintenance run looks the next one up."""
        for start in range(0, len(post_ids), _IN_MAX):
            part = post_ids[start : start + _IN_MAX]
            names = [f":left{index}" for index in range(len(part))]
            self._conditional_oldest(
                "SET stale = :stale",
                f"oldest IN ({', '.join(names)})",
                {":stale": {"BOOL": True}, **{name: {"S": post_id} for name, post_id in zip(names, part, strict=True)}},
            )

    def replace_stale_oldest(self, stale_id: str, oldest_id: str | None) -> bool:
        """Put the looked-up oldest pending post in place of the stale one,
        unless the record moved meanwhile (a new record lowered it: the
        caller looks again next time). False if it moved."""
        values = {":stale": {"BOOL": True}, ":old": {"S": stale_id}}
        if oldest_id is None:
            expression = "REMOVE oldest, stale"
        else:
            expression = "SET oldest = :new REMOVE stale"
            values[":new"] = {"S": oldest_id}
        return self._conditional_oldest(expression, "stale = :stale AND oldest = :old", values)

    def _conditional_oldest(self, expression: str, condition: str, values: dict) -> bool:
        try:
            with unavailable_as_domain_error("update oldest pending"):
                self._client.update_item(
                    TableName=self._table,
                    Key=layout.oldest_key(),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- reads -------------------------------------------------------------------

    def status(self) -> StreamStatus:
        """One consistent BatchGetItem, whatever WRITE_SHARDS is."""
        return status_from_items(self.status_items())

    def status_items(self, also: list[dict] = ()) -> list[dict]:
        """The raw status items and the items at `also`, in one BatchGetItem
        (the caller reads what else it needs in the same request)."""
        return dynamo.batch_get(self._client, self._table, [*status_keys(), *also], "read status", consistent=True)
