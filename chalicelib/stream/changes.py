"""Stream records as changes of posts. Pure: no AWS SDK.

A record of the table's stream (NEW_AND_OLD_IMAGES, in the shape Lambda
hands it over) names one item and its images before and after the write.
Only posts matter here: a post written here (`POST#<id> / POST`) and a
mirrored post of the primary (`MIRROR#<s> / <id>`). Every other item (users,
counters, leases, the stream consumer's own writes) is skipped, so the
consumer's writes never feed back into it.

Follow edges (`FOLLOWING#<follower> / <followee>`, mastodon.follows) are
decoded apart (`decode_follows`): the home fan-out backfills and trims on
them. Only that direction is read: the `FOLLOWERS#` twin written in the
same transaction would tell the same change twice, from another shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chalicelib.core.models import Post

_POST_PREFIX = "POST#"
_POST_SK = "POST"
_MIRROR_PREFIX = "MIRROR#"
_FOLLOWING_PREFIX = "FOLLOWING#"
_PENDING_FLAG = "home_pending"  # home.layout.PENDING_FLAG (that module loads the SDK)
# Index keys and other layout attributes: not fields of a Post.
_LAYOUT = frozenset({"PK", "SK", "AuthorPK", "AuthorSK", "PublicPK", "PublicSK", "BacklogPK", "BacklogSK"})


@dataclass(frozen=True)
class PostChange:
    """One write of one post: `before` is None for a new item, `after` None
    for a removed one (TTL, or an item deleted outright)."""

    event_id: str
    before: Post | None
    after: Post | None
    mirrored: bool = False

    @property
    def post(self) -> Post:
        """The post as it stands after the write (or, removed, as it was)."""
        return self.after or self.before  # type: ignore[return-value]

    @property
    def shown_before(self) -> bool:
        return self.before is not None and not self.before.is_deleted

    @property
    def shown_after(self) -> bool:
        return self.after is not None and not self.after.is_deleted

    @property
    def appeared(self) -> bool:
        """The post entered the timelines: made, or folded in from the spool."""
        return self.shown_after and not self.shown_before

    @property
    def disappeared(self) -> bool:
        """The post left the timelines: deleted (here, or on the primary for a
        mirrored post), or removed."""
        return self.shown_before and not self.shown_after

    def state_before(self) -> str | None:
        return self.before.state if self.before else None

    def state_after(self) -> str | None:
        return self.after.state if self.after else None


@dataclass(frozen=True)
class FollowChange:
    """A follow made (`followed`) or undone, from its edge's record;
    `home_pending` when it was made for the follower's home at once, so the
    follower's `home_backfilling` set names the followee until settled."""

    follower: str
    followee: str
    followed: bool
    home_pending: bool = False


def decode_follows(records: list[dict]) -> list[FollowChange]:
    """The follows made and undone among `records`, in their order. An edge
    rewritten in place (no follow writes one so) changes nothing."""
    changes = []
    for record in records:
        body = record.get("dynamodb", {})
        keys = attribute_values(body.get("Keys", {}))
        pk, sk = str(keys.get("PK", "")), str(keys.get("SK", ""))
        existed, exists = bool(body.get("OldImage")), bool(body.get("NewImage"))
        if pk.startswith(_FOLLOWING_PREFIX) and sk and existed != exists:
            pending = bool(body.get("NewImage", {}).get(_PENDING_FLAG, {}).get("BOOL"))
            changes.append(FollowChange(pk.removeprefix(_FOLLOWING_PREFIX), sk, exists, pending))
    return changes


def decode(records: list[dict]) -> list[PostChange]:
    """The post changes among `records`, in their order."""
    changes = []
    for record in records:
        change = decode_record(record)
        if change is not None:
            changes.append(change)
    return changes


def decode_record(record: dict) -> PostChange | None:
    body = record.get("dynamodb", {})
    keys = attribute_values(body.get("Keys", {}))
    pk, sk = str(keys.get("PK", "")), str(keys.get("SK", ""))
    mirrored = pk.startswith(_MIRROR_PREFIX)
    if not (mirrored or (pk.startswith(_POST_PREFIX) and sk == _POST_SK)):
        return None
    before, after = (_post(body.get(image)) for image in ("OldImage", "NewImage"))
    if before is None and after is None:
        return None
    return PostChange(str(record.get("eventID", "")), before, after, mirrored)


def _post(image: dict | None) -> Post | None:
    if not image:
        return None
    values = attribute_values(image)
    return Post.from_record({name: value for name, value in values.items() if name not in _LAYOUT})


def attribute_values(item: dict) -> dict:
    """A DynamoDB item (wire format) as plain values: strings, ints (or
    floats), booleans, None, lists, dicts and sets as sorted lists."""
    return {name: attribute_value(value) for name, value in item.items()}


def attribute_value(value: dict):
    ((kind, inner),) = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return _number(inner)
    if kind in ("BOOL", "B"):
        return inner
    if kind == "NULL":
        return None
    if kind == "SS":
        return sorted(inner)
    if kind == "NS":
        return sorted(_number(n) for n in inner)
    if kind == "L":
        return [attribute_value(item) for item in inner]
    if kind == "M":
        return attribute_values(inner)
    return inner


def _number(text: str):
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)
