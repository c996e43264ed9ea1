"""Time-sortable post ids (ULIDs) and the timestamps derived from them.

A ULID is 48 bits of milliseconds since the epoch and 80 random bits, in
Crockford base32: its string order is its time order, which is what the
timelines, the backlog and the archive checkpoint all sort by. Ids made in
the same millisecond by one container increase monotonically.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# fullmatch, not `^...$`: `$` also matches before a final newline.
_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1
# Ids made in one millisecond step here, not at bit 0, so their top 64 bits
# (the Mastodon id, chalicelib/mastodon/ids.py) differ too.
_SAME_MILLISECOND_STEP = 1 << 64
MAX_ULID_VALUE = (1 << 128) - 1


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + _ALPHABET.index(char)
    return value


class UlidFactory:
    """Makes ULIDs; monotonic within one instance, thread-safe."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        with self._lock:
            ms = int(self._clock() * 1000)
            if ms <= self._last_ms:
                # Same (or an earlier, skewed) millisecond: step the random
                # part so ids from this container never go backwards.
                ms = self._last_ms
                random_part = self._last_random + _SAME_MILLISECOND_STEP
                if random_part > _RANDOM_MAX:
                    ms += 1
                    random_part = int.from_bytes(os.urandom(10), "big") >> 1
            else:
                random_part = int.from_bytes(os.urandom(10), "big") >> 1
            self._last_ms, self._last_random = ms, random_part
        return _encode((ms << _RANDOM_BITS) | random_part, 26)


def is_ulid(text: object) -> bool:
    return isinstance(text, str) and bool(_ULID_RE.fullmatch(text))


def ulid_value(ulid: str) -> int:
    return _decode(ulid)


def ulid_from_value(value: int) -> str:
    return _encode(value, 26)


MIN_ULID = ulid_from_value(0)
MAX_ULID = ulid_from_value(MAX_ULID_VALUE)


def ulid_millis(ulid: str) -> int:
    return _decode(ulid[:10])


def smallest_ulid_at(millis: int) -> str:
    """The lowest ULID of a millisecond: an exclusive upper bound for 'older than'."""
    return _encode(millis << _RANDOM_BITS, 26)


def iso_from_millis(millis: int) -> str:
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def millis_from_iso(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000 + 0.5)
