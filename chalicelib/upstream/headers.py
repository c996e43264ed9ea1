"""What a primary's response headers say about waiting: Retry-After and the
X-RateLimit-* family, as seconds from now. Pure: `now` is passed in.

Every wait is clamped to [0, MAX_RETRY_AFTER_SECONDS], and a header that
cannot be read is treated as absent (None), never as an error: a primary's
odd header must not stop a replay.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from chalicelib.core.clock import parse_iso
from chalicelib.core.parsing import ascii_integer
from chalicelib.upstream.port import RateLimit

# One Lambda run lasts at most 15 minutes; a longer wait is the next run's business,
# and a bogus far-future date must not park a post for days.
MAX_RETRY_AFTER_SECONDS = 900.0
# X-RateLimit-Reset values at or above this (2001-09-09) are epoch seconds;
# below it they are seconds from now. No window lasts 31 years.
EPOCH_THRESHOLD = 1_000_000_000


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP
    date. Clamped to [0, MAX_RETRY_AFTER_SECONDS]; None when absent or unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = float(text)
    else:
        moment = _parse_http_date(text)
        if moment is None:
            return None
        seconds = moment.timestamp() - now
    return _clamp(seconds)


def parse_rate_limit_reset(value: str | None, now: float) -> float | None:
    """Seconds until the rate-limit window resets, from X-RateLimit-Reset.

    Primaries disagree on the format, so all three are accepted:
    epoch seconds (GitHub), seconds from now (IETF draft), and an ISO 8601
    date such as `2017-06-02T15:00:00.000Z` (Mastodon). Numbers at or above
    EPOCH_THRESHOLD are taken as epoch seconds. Clamped like Retry-After.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        moment = parse_iso(text)
        return None if moment is None else _clamp(moment.timestamp() - now)
    if not math.isfinite(number):
        return None
    return _clamp(number - now if number >= EPOCH_THRESHOLD else number)


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimit | None:
    """The X-RateLimit-* headers, or None when the primary sent none of them."""
    limit = _parse_int(headers.get("X-RateLimit-Limit"))
    remaining = _parse_int(headers.get("X-RateLimit-Remaining"))
    reset = parse_rate_limit_reset(headers.get("X-RateLimit-Reset"), now)
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimit(limit=limit, remaining=remaining, reset_after_seconds=reset)


def _parse_http_date(text: str) -> datetime | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return _assume_utc(moment)


def _assume_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    return ascii_integer(value.strip())


def _clamp(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
