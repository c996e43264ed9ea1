"""Per-user write limits: a fixed one-minute window per user and kind of
write.

Follows, unfollows and deletes count inside the write's own transaction: a
refused write counts nothing and a counted write always happened. A post is
not a transaction (docs/DESIGN.md, "Write path"): its count is one
conditional UpdateItem (1 write unit) just before the post's own write, so
a post that then fails (a throttled write goes to the spool) has counted
anyway; the limit can only err towards refusing. All of a user's windows
for one minute share one item, `RATE#<user>#<minute>`, with one count per
kind (`posts`; `writes` for follows, unfollows and deletes); TTL removes it
once the minute is over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.errors import RateLimited

_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateLimit:
    """`per_minute` writes of one kind per user; 0 means no limit."""

    counter: str
    per_minute: int
    code: str
    what: str
    # A window other than a minute (sign-in failures): `per_minute` is then per window.
    window_seconds: int = _WINDOW_SECONDS

    def charge(self, user: str) -> Charge | None:
        """The count of one write by `user` now, or None when unlimited."""
        if not self.per_minute:
            return None
        return Charge(self, user, int(time.time()))


def posts_limit(per_minute: int) -> RateLimit:
    return RateLimit("posts", per_minute, "too_many_posts", "posts")


def writes_limit(per_minute: int) -> RateLimit:
    return RateLimit("writes", per_minute, "too_many_writes", "follows, unfollows and deletes")


@dataclass(frozen=True)
class Charge:
    limit: RateLimit
    user: str
    now: int

    def key(self) -> dict:
        return dynamo.key(f"RATE#{self.user}#{self.now // self.limit.window_seconds}", "RATE")

    def transact_item(self, table: str) -> dict:
        return {"Update": self.update(table)}

    def update(self, table: str) -> dict:
        """The UpdateItem (or transaction Update) that counts this write if
        the window has room."""
        window = self.now // self.limit.window_seconds
        return {
            "TableName": table,
            "Key": self.key(),
            "UpdateExpression": "ADD #count :one SET expires_at = :expires",
            "ConditionExpression": "attribute_not_exists(#count) OR #count < :limit",
            "ExpressionAttributeNames": {"#count": self.limit.counter},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":limit": {"N": str(self.limit.per_minute)},
                ":expires": {"N": str((window + 2) * self.limit.window_seconds)},
            },
        }

    def refused(self) -> RateLimited:
        return RateLimited(
            f"at most {self.limit.per_minute} {self.limit.what} per {_window_words(self.limit.window_seconds)}",
            retry_after=self.limit.window_seconds - self.now % self.limit.window_seconds,
            code=self.limit.code,
        )


def _window_words(seconds: int) -> str:
    return "minute" if seconds == _WINDOW_SECONDS else f"{seconds // 60} minutes"


def charge_alone(client, table: str, charge: Charge | None) -> None:
    """Count one write in its window on its own (1 write unit); raises
    RateLimited when the window is full."""
    if charge is None:
        return
    try:
        with unavailable_as_domain_error("count a write"):
            client.update_item(**charge.update(table))
    except client.exceptions.ConditionalCheckFailedException as exc:
        raise charge.refused() from exc


def transact_charged(
    client, table: str, items: list[dict], what: str, charge: Charge | None, idempotent_as: str | None = None
) -> None:
    """`dynamo.transact` of `items` plus, with a charge, its window count.

    Raises RateLimited when the window is full and nothing else failed;
    when another condition failed too, that one is the answer (a retried
    post gets its post back even at the limit), so TransactionCancelled is
    raised as usual, its reasons indexed like `items`.
    """
    if charge is None:
        dynamo.transact(client, items, what, idempotent_as)
        return
    try:
        dynamo.transact(client, [*items, charge.transact_item(table)], what, idempotent_as)
    except dynamo.TransactionCancelled as cancelled:
        if cancelled.failed(len(items)) and not any(cancelled.failed(index) for index in range(len(items))):
            raise charge.refused() from cancelled
        raise
