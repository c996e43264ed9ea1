"""Retry-After and X-RateLimit-* as the fake primary writes them, in each
format real primaries use."""

from __future__ import annotations

import email.utils
import math
import time

from devtools.fake_primary.mode import Mode
from devtools.fake_primary.state import RateWindow, iso_at


def retry_after_value(seconds: int, style: str) -> str:
    if style == "http-date":
        return email.utils.formatdate(time.time() + seconds, usegmt=True)
    return str(seconds)


def _reset_value(seconds: float, style: str) -> str:
    if style == "epoch":
        return str(math.ceil(time.time() + seconds))
    if style == "iso":
        return iso_at(time.time() + seconds)
    return str(math.ceil(seconds))


def rate_headers(rate: RateWindow | None, mode: Mode) -> dict[str, str]:
    if rate is None:
        return {}
    return {
        "X-RateLimit-Limit": str(rate.limit),
        "X-RateLimit-Remaining": str(rate.remaining),
        "X-RateLimit-Reset": _reset_value(rate.reset_seconds, mode.rate_limit_reset_format),
    }
