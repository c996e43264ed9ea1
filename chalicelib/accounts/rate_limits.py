"""Per-user write limits: a fixed one-minute window per user and kind of
write.

Follows, unfollows and deletes count inside the write's own transaction: a
refused write counts nothing and a counted write always happened. All of a
user's transactional windows for one minute share one item,
`RATE#<user>#<minute> / RATE`, with one count per kind (`writes` for
follows, unfollows and deletes; sign-in failures have their own users);
TTL removes it once the minute is over.

Posts take no write unit for their limit (docs/DESIGN.md, "Write path"):
the stream counts them, off the request path, into
`RATE#<user>#<minute> / POSTS` (a string set of the posts' tags, so a
record delivered again adds nothing), and a post is admitted against that
count, read without a write, united with the posts this container
accepted in the window itself (`PostWindows`), which the stream may not
have counted yet. The window of a post is the minute of its id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.accounts.windows import WINDOW_SECONDS, post_tag
from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.errors import RateLimited, StoreUnavailable


@dataclass(frozen=True)
class RateLimit:
    """`per_minute` writes of one kind per user; 0 means no limit."""

    counter: str
    per_minute: int
    code: str
    what: str
    # A window other than a minute (sign-in failures): `per_minute` is then per window.
    window_seconds: int = WINDOW_SECONDS

    def charge(self, user: str) -> Charge | None:
        """The count of one write by `user` now, or None when unlimited."""
        return self.charge_at(user, time.time())

    def charge_at(self, user: str, now: float) -> Charge | None:
        """The count of one write by `user` at `now` (a post's: its id's time)."""
        if not self.per_minute:
            return None
        return Charge(self, user, int(now))


def posts_limit(per_minute: int) -> RateLimit:
    return RateLimit("posts", per_minute, "too_many_posts", "posts")


def writes_limit(per_minute: int) -> RateLimit:
    return RateLimit("writes", per_minute, "too_many_writes", "follows, unfollows and deletes")


@dataclass(frozen=True)
class Charge:
    limit: RateLimit
    user: str
    now: int

    @property
    def window(self) -> int:
        return self.now // self.limit.window_seconds

    def key(self) -> dict:
        return dynamo.key(f"RATE#{self.user}#{self.window}", "RATE")

    def transact_item(self, table: str) -> dict:
        return {"Update": self.update(table)}

    def update(self, table: str) -> dict:
        """The UpdateItem (or transaction Update) that counts this write if
        the window has room."""
        window = self.window
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
    return "minute" if seconds == WINDOW_SECONDS else f"{seconds // 60} minutes"


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


# -- posts: counted on the stream, admitted without a write ----------------------------

POSTS_SK = "POSTS"
POST_TAGS = "post_tags"


def posts_window_key(user: str, window: int) -> dict:
    return dynamo.key(f"RATE#{user}#{window}", POSTS_SK)


def posts_window_update(table: str, user: str, window: int, tags: set[str]) -> dict:
    """The stream's UpdateItem adding `tags` to the window's set (adding
    again changes nothing); TTL removes the item once the window is over."""
    return {
        "TableName": table,
        "Key": posts_window_key(user, window),
        "UpdateExpression": "ADD #tags :tags SET expires_at = :expires",
        "ExpressionAttributeNames": {"#tags": POST_TAGS},
        "ExpressionAttributeValues": {
            ":tags": {"SS": sorted(tags)},
            ":expires": {"N": str((window + 2) * WINDOW_SECONDS)},
        },
    }


def read_counted_posts(client, table: str, charge: Charge) -> set[str]:
    """The tags of the posts the stream has counted in the charge's window:
    one eventually consistent GetItem (half a read unit, no write unit)."""
    with unavailable_as_domain_error("read the post window"):
        response = client.get_item(
            TableName=table,
            Key=posts_window_key(charge.user, charge.window),
            ProjectionExpression="#tags",
            ExpressionAttributeNames={"#tags": POST_TAGS},
        )
    return set(dynamo.from_item(response.get("Item", {})).get(POST_TAGS, []))


class PostWindows:
    """The posts one container accepted, per author and window: the part of
    the count the stream may not have delivered yet. Its windows are kept
    until they are over (a stale read of the stream's count may lack a post
    an earlier read had), so it holds at most `per_minute` tags per author
    who posted here in the last two minutes. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[tuple[str, int], set[str]] = {}
        self._latest = 0

    def admit(self, charge: Charge | None, post_id: str, counted: Callable[[Charge], set[str]]) -> None:
        """Accept the post into its window, or raise RateLimited when the
        posts counted there (`counted`: the stream's, read for the charge)
        and those accepted here reach the limit; a window that cannot be
        read counts this container's posts only. A post already in the
        window (its own retry) is admitted again."""
        if charge is None:
            return
        tag = post_tag(post_id)
        window = (charge.user, charge.window)
        with self._lock:
            if tag in self._accepted.get(window, ()):
                return
        try:
            seen = counted(charge)
        except StoreUnavailable:
            # Unread (the post's own write may still succeed): this
            # container's posts alone, which it never lets pass the limit.
            seen = set()
        with self._lock:
            accepted = self._accepted.setdefault(window, set())
            if tag not in seen and len(seen | accepted) >= charge.limit.per_minute:
                raise charge.refused()
            accepted.add(tag)
            if charge.window > self._latest:
                self._latest = charge.window
                self._forget_before(charge.window - 1)

    def _forget_before(self, window: int) -> None:
        """Drop the windows that are over (once a minute, when a new one starts)."""
        for old in [key for key in self._accepted if key[1] < window]:
            del self._accepted[old]
