"""Who follows whom: the DynamoDB adapter, and Mastodon's CSV export format.

A follow is two items written in one transaction, so both directions can be
read with one Query each and never disagree:

    FOLLOWING#<follower> / <followee>   (whom a user follows: home timeline)
    FOLLOWERS#<followee> / <follower>   (who follows a user: followed_by)

and each user's counts live in `USER#<username> / FOLLOWSTATS`, kept in the
same transaction, so an Account entity never counts items.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from chalicelib.accounts.rate_limits import Charge, transact_charged
from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.errors import FollowLimitReached, ValidationFailed
from chalicelib.home import layout as home_layout

FOLLOWING_PREFIX = "FOLLOWING#"
FOLLOWERS_PREFIX = "FOLLOWERS#"
STATS_SK = "FOLLOWSTATS"
CSV_HEADER = ("Account address", "Show boosts", "Notify on new posts", "Languages")
MAX_IMPORT_ROWS = 5000


@dataclass(frozen=True)
class Follow:
    follower: str
    followee: str
    show_reblogs: bool = True
    notify: bool = False
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class FollowCounts:
    following: int = 0
    followers: int = 0


class FollowStore:
    """DynamoDB adapter for the follow graph. Takes its client, and the
    most accounts one user may follow."""

    def __init__(self, client, table_name: str, max_following: int) -> None:
        self._client = client
        self._table = table_name
        self._max_following = max_following

    def follow(
        self, follow: Follow, created_at: str, charge: Charge | None = None, *, home_at_once: bool = False
    ) -> bool:
        """Record the follow; False if it already existed (nothing changes,
        so a repeated request cannot inflate the counts). Raises
        FollowLimitReached when the follower follows `max_following`
        accounts already, RateLimited when `charge` finds the follower's
        write window full. With `home_at_once` the follower's home shows
        the followee's posts from the next page on, before the stream has
        backfilled them (`home.layout`)."""
        edge = {
            "follower": follow.follower,
            "followee": follow.followee,
            "created_at": created_at,
            "show_reblogs": follow.show_reblogs,
            "notify": follow.notify,
            "languages": list(follow.languages) or None,
        }
        # Only the follower's side says the stream has a backfill to settle.
        pending = {home_layout.PENDING_FLAG: True} if home_at_once else {}
        following = self._count(follow.follower, "following", +1)
        if home_at_once:
            _note_in_home(following, follow.followee, adding=home_layout.BACKFILLING, taking=home_layout.UNFOLLOWING)
        # The cap is a condition on the count the same transaction raises,
        # so racing follows cannot pass it together.
        following["Update"]["ConditionExpression"] = "attribute_not_exists(#n) OR #n < :max"
        following["Update"]["ExpressionAttributeValues"][":max"] = {"N": str(self._max_following)}
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": dynamo.to_item(
                        {"PK": FOLLOWING_PREFIX + follow.follower, "SK": follow.followee, **edge, **pending}
                    ),
                    # The count moves only if this edge is new: two racing
                    # follows of one account add 1, not 2.
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": dynamo.to_item({"PK": FOLLOWERS_PREFIX + follow.followee, "SK": follow.follower, **edge}),
                }
            },
            following,
            self._count(follow.followee, "followers", +1),
        ]
        try:
            return self._transact(items, "follow", charge)
        except dynamo.TransactionCancelled as cancelled:
            if cancelled.failed(items.index(following)):
                raise FollowLimitReached(self._max_following) from cancelled
            raise

    def unfollow(
        self, follower: str, followee: str, charge: Charge | None = None, *, home_at_once: bool = False
    ) -> bool:
        """Remove the follow; False if there was none. Raises RateLimited
        when `charge` finds the follower's write window full. With
        `home_at_once` the follower's home leaves the followee's posts out
        from the next page on, before the stream has removed them."""
        following = self._count(follower, "following", -1)
        if home_at_once:
            _note_in_home(following, followee, adding=home_layout.UNFOLLOWING, taking=home_layout.BACKFILLING)
        items = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": dynamo.key(FOLLOWING_PREFIX + follower, followee),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {"Delete": {"TableName": self._table, "Key": dynamo.key(FOLLOWERS_PREFIX + followee, follower)}},
            following,
            self._count(followee, "followers", -1),
        ]
        return self._transact(items, "unfollow", charge)

    def _transact(self, items: list[dict], what: str, charge: Charge | None) -> bool:
        """False if the edge's condition (item 0) failed: nothing to do."""
        try:
            transact_charged(self._client, self._table, items, what, charge)
        except dynamo.TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return False
            raise
        return True

    def _count(self, username: str, name: str, delta: int) -> dict:
        return {
            "Update": {
                "TableName": self._table,
                "Key": dynamo.key(f"USER#{username}", STATS_SK),
                "UpdateExpression": "ADD #n :delta",
                "ExpressionAttributeNames": {"#n": name},
                "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
            }
        }

    def get(self, follower: str, followee: str) -> Follow | None:
        with unavailable_as_domain_error("get follow"):
            response = self._client.get_item(
                TableName=self._table, Key=dynamo.key(FOLLOWING_PREFIX + follower, followee), ConsistentRead=True
            )
        return _follow_from_item(response["Item"]) if "Item" in response else None

    def follows_back(self, follower: str, followee: str) -> bool:
        """Whether `followee` follows `follower` (Relationship.followed_by)."""
        return self.get(followee, follower) is not None

    def following(self, follower: str, after: str | None = None, limit: int | None = None) -> list[str]:
        """Whom `follower` follows, by username; all of them when `limit` is
        None (the home timeline), else one page after `after`."""
        names: list[str] = []
        start = None
        while True:
            values = {":pk": {"S": FOLLOWING_PREFIX + follower}}
            condition = "PK = :pk"
            if after:
                condition += " AND SK > :after"
                values[":after"] = {"S": after}
            extra = {"ExclusiveStartKey": start} if start else {}
            if limit is not None:
                extra["Limit"] = limit - len(names)
            with unavailable_as_domain_error("list following"):
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ProjectionExpression="SK",
                    **extra,
                )
            names += [item["SK"]["S"] for item in response["Items"]]
            start = response.get("LastEvaluatedKey")
            if not start or (limit is not None and len(names) >= limit):
                return names

    def counts(self, usernames: list[str]) -> dict[str, FollowCounts]:
        """Follow counts of several users in one BatchGetItem per 100."""
        found: dict[str, FollowCounts] = {name: FollowCounts() for name in usernames}
        keys = [dynamo.key(f"USER#{name}", STATS_SK) for name in dict.fromkeys(usernames)]
        for item in dynamo.batch_get(self._client, self._table, keys, "read follow counts"):
            values = dynamo.from_item(item)
            name = values["PK"].removeprefix("USER#")
            found[name] = FollowCounts(values.get("following", 0), values.get("followers", 0))
        return found


def _note_in_home(count_update: dict, followee: str, *, adding: str, taking: str) -> None:
    """Make the follower's count update also add `followee` to the home set
    `adding` and take it out of `taking` (`home.layout`): the same item,
    so no write unit more than the count costs."""
    update = count_update["Update"]
    update["UpdateExpression"] += ", #adding :followee DELETE #taking :followee"
    update["ExpressionAttributeNames"] |= {"#adding": adding, "#taking": taking}
    update["ExpressionAttributeValues"][":followee"] = {"SS": [followee]}


def _follow_from_item(item: dict) -> Follow:
    values = dynamo.from_item(item)
    return Follow(
        values["follower"],
        values["followee"],
        bool(values.get("show_reblogs", True)),
        bool(values.get("notify", False)),
        tuple(values.get("languages") or ()),
    )


@dataclass(frozen=True)
class ImportRow:
    line: int
    username: str | None
    follow_options: dict
    problem: str | None = None


def parse_following_csv(text: str, local_domain: str) -> list[ImportRow]:
    """Rows of Mastodon's `following_accounts.csv`. An address on another
    domain than `local_domain` (when one is set) is a problem row, not an
    error, so one remote account does not block a whole import. Raises
    ValidationFailed if the file is not that format at all.

    Lines may end in CRLF, LF or a bare CR (what spreadsheets on old Macs
    save): `newline=""` hands all three to the csv module, which ends a
    row at each and keeps them inside quoted fields.
    """
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        # With newline="" only a field over the csv module's size limit
        # gets here (Python 3.11 reads NUL and stray quotes).
        limit = csv.field_size_limit()
        raise ValidationFailed(f"the file is not CSV: a field is over {limit} characters", code="invalid_csv") from exc
    if not rows or tuple(cell.strip() for cell in rows[0][:1]) != CSV_HEADER[:1]:
        raise ValidationFailed(f"the first line must be the header {','.join(CSV_HEADER)}", code="invalid_csv")
    if len(rows) - 1 > MAX_IMPORT_ROWS:
        raise ValidationFailed(f"at most {MAX_IMPORT_ROWS} accounts per import", code="too_many_rows")
    header = [cell.strip() for cell in rows[0]]
    parsed = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        record = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        parsed.append(_import_row(number, record, local_domain))
    return parsed


def _import_row(line: int, record: dict[str, str], local_domain: str) -> ImportRow:
    address = record.get(CSV_HEADER[0], "").removeprefix("@")
    username, _, domain = address.partition("@")
    options = {
        "show_reblogs": record.get(CSV_HEADER[1], "true").lower() != "false",
        "notify": record.get(CSV_HEADER[2], "false").lower() == "true",
        "languages": tuple(code.strip() for code in record.get(CSV_HEADER[3], "").split(",") if code.strip()),
    }
    if domain and local_domain and domain.lower() != local_domain.lower():
        return ImportRow(line, None, options, f"{address}: not an account of {local_domain}")
    return ImportRow(line, username.lower(), options)
