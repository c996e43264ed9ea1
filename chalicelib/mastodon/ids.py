"""Mastodon status ids from Lifeboat post ids, and Mastodon's id windows.

Mastodon's ids are `milliseconds << 16 | 16 bits`, in 64 bits, sent as
decimal strings; clients sort and page by them. A Lifeboat post id is a
ULID: 48 bits of milliseconds, then 80 random bits. The top 64 bits of the
ULID are therefore exactly Mastodon's layout (milliseconds, then the first
16 random bits), so:

    mastodon_id(ulid) = int(ulid) >> 64

is time-ordered and fits a signed 64-bit integer until the year 10889. The
reverse is a range, not a point: every ULID whose top 64 bits are `n` lies in
[n << 64, (n << 64) | (2**64 - 1)]. Timelines page with these bounds (no
lookup at all); fetching one status queries that range (see store.py,
`posts_in_window`). `ids.UlidFactory` steps ids made in one millisecond by
one container at bit 64, so one container never mints two ULIDs with the
same Mastodon id. docs/DESIGN.md has the collision arithmetic across
containers.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core import ids
from chalicelib.core.pagination import parse_limit
from chalicelib.core.parsing import ascii_integer
from chalicelib.errors import ValidationFailed

_LOW_BITS = 64
_LOW_MASK = (1 << _LOW_BITS) - 1
# Mastodon ids are signed 64-bit integers (PostgreSQL bigint).
MAX_ID = (1 << 63) - 1
DEFAULT_LIMIT = 20
MAX_LIMIT = 40


def mastodon_id(post_id: str) -> str:
    return str(ids.ulid_value(post_id) >> _LOW_BITS)


def lowest_ulid(mastodon: int) -> str:
    return ids.ulid_from_value(mastodon << _LOW_BITS)


def highest_ulid(mastodon: int) -> str:
    return ids.ulid_from_value((mastodon << _LOW_BITS) | _LOW_MASK)


def parse_id(raw: object) -> int | None:
    """A Mastodon id from a path or parameter, or None when it cannot be one
    (then the caller answers 404 for a path, and 422 for a parameter)."""
    value = ascii_integer(raw)
    return value if value is not None and value <= MAX_ID else None


@dataclass(frozen=True)
class Window:
    """Which posts a Mastodon page asks for, as inclusive ULID bounds.

    `oldest_first` is min_id's meaning: the page right after `lowest`, not
    the newest posts above it (since_id). Either way the page is shown
    newest first.
    """

    lowest: str
    highest: str
    limit: int
    oldest_first: bool = False


def window_from_params(params: dict[str, str]) -> Window:
    """max_id, since_id, min_id and limit as Mastodon reads them; raises
    ValidationFailed for a value that is not an id or a limit."""
    limit = parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT, clamp=True)
    highest, lowest = ids.MAX_ULID, ids.MIN_ULID
    max_id = _param_id(params, "max_id")
    if max_id is not None:
        highest = ids.ulid_from_value(max(0, (max_id << _LOW_BITS) - 1))
    since_id, min_id = _param_id(params, "since_id"), _param_id(params, "min_id")
    floor = min_id if min_id is not None else since_id
    if floor is not None:
        lowest = ids.ulid_from_value(min((floor + 1) << _LOW_BITS, ids.MAX_ULID_VALUE))
    return Window(lowest, highest, limit, oldest_first=min_id is not None)


def _param_id(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_id(raw)
    if value is None:
        raise ValidationFailed(f"{name} must be a status id", code="invalid_id")
    return value
