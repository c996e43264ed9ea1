"""The one clock: times as the UTC ISO text every record carries (the
format `ids.iso_from_millis` spells), and the time an invocation has left."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib.core import ids


def iso_at(epoch_seconds: float) -> str:
    """An epoch time as our UTC ISO text, to the millisecond."""
    return ids.iso_from_millis(int(epoch_seconds * 1000))


def utc_now_iso() -> str:
    return iso_at(time.time())


def parse_iso(text: str) -> datetime | None:
    """An ISO 8601 time as an aware datetime (naive means UTC, a trailing Z
    is UTC), or None when `text` is none: primaries' headers and operators'
    arguments are read alike."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def remaining_seconds(lambda_context, fallback: float = 25.0) -> Callable[[], float]:
    """A callable giving the invocation's remaining time in seconds at the
    moment it is called, from the Lambda context (the local server's fake
    context may lack it: then `fallback` seconds from now)."""
    remaining_ms = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        deadline = time.monotonic() + fallback
        return lambda: max(0.0, deadline - time.monotonic())
    return lambda: remaining_ms() / 1000
