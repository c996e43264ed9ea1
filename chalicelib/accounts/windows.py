"""The rate limit's windows as both sides name them: the request path that
admits a post and the stream that counts it (`accounts.rate_limits`,
`stream.post_windows`). Pure: no AWS SDK."""

from __future__ import annotations

import hashlib

from chalicelib.core import ids

WINDOW_SECONDS = 60
# A post's tag in its window's set: 12 hex digits of its id's digest (48
# bits; two posts of one author in one minute share one with odds of about
# n^2 / 2^49), under half an id's length, so a window of 79 posts stays
# under 1 KB (1 write unit for the stream's update).
_TAG_DIGITS = 12


def post_tag(post_id: str) -> str:
    return hashlib.sha256(post_id.encode()).hexdigest()[:_TAG_DIGITS]


def post_window(post_id: str) -> int:
    """A post's window: the minute of its id."""
    return ids.ulid_millis(post_id) // 1000 // WINDOW_SECONDS
