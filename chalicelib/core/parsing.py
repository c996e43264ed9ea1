"""Strict parsers for untrusted text: bounded ASCII integers and bounded JSON.

Python's own parsers are generous in ways that break an edge. `str.isdigit()`
is true for '²' and '٣', and `int()` takes the second but not the first;
`int()` refuses more than 4,300 digits; `json.loads` recurses once per level
of nesting until RecursionError, and accepts NaN and Infinity. These accept
only what the protocols allow and bound the work before doing it, so a
caller sees a value or one known error, never a surprise.

Pure: no HTTP, no AWS. The edge (chalicelib/api/requests.py) turns the errors
into 400s; the replay treats a primary's unparseable answer as no answer.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

from chalicelib.errors import BadRequest

# Every signed 64-bit integer fits, which is every number a request or a
# primary's header legitimately carries (limits, ids, seconds).
MAX_INTEGER_DIGITS = 19
# Our bodies nest at most three levels (a Mastodon form's lists); 32 leaves
# room for any client's habits and stays far from the interpreter's stack.
MAX_JSON_DEPTH = 32

_UNSIGNED_RE = re.compile(f"[0-9]{{1,{MAX_INTEGER_DIGITS}}}")
_SIGNED_RE = re.compile(f"-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}")
# A JSON string (escapes included), to blank out before counting brackets.
_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})
# What Rails (and so Mastodon) reads as false; every other value is true.
_RAILS_FALSE_WORDS = frozenset({"", "0", "false", "f", "off", "no"})


def ascii_integer(text: object, *, signed: bool = False) -> int | None:
    """The integer `text` spells in 1 to 19 ASCII digits (after an optional
    '-' when `signed`), else None: no spaces, no '+', no other scripts'
    digits, no underscores, nothing `int()` would need long to read."""
    if not isinstance(text, str):
        return None
    pattern = _SIGNED_RE if signed else _UNSIGNED_RE
    return int(text) if pattern.fullmatch(text) else None


class JsonRejected(Exception):
    """The text is not JSON we accept; `reason` is safe to show a client
    (it describes their input, never our internals)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def loads_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> object:
    """`json.loads`, refusing nesting deeper than `max_depth` (checked by a
    linear scan before parsing) and the NaN/Infinity extensions. Bytes are
    decoded as `json.loads` decodes them (UTF-8, -16 or -32).

    Raises JsonRejected, and nothing else, for any input.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode(json.detect_encoding(text))
        except UnicodeDecodeError as exc:
            raise JsonRejected("it is not UTF-8, UTF-16 or UTF-32 text") from exc
    if json_depth(text) > max_depth:
        raise JsonRejected(f"it nests deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise JsonRejected(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except (ValueError, RecursionError) as exc:
        # ValueError: an integer of more than 4,300 digits. RecursionError
        # cannot follow the depth check unless the stack is nearly full.
        raise JsonRejected("it cannot be read") from exc


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of `text` nest (brackets inside
    strings do not count). Exact for valid JSON; for broken JSON it may
    count too deep, which only refuses what the parser would refuse."""
    brackets = _BRACKET_RE.findall(_JSON_STRING_RE.sub("", text))
    return max(accumulate(_DEPTH_STEP[bracket] for bracket in brackets), default=0)


def _refuse_constant(name: str) -> object:
    raise JsonRejected(f"{name} is not a JSON number")


def flag(raw: str | None, *, lenient: bool = False) -> bool:
    """A boolean parameter; absent is false. Strict (the native API):
    true/1/yes or false/0/no, in any case, else BadRequest. Lenient (the
    Mastodon API, as Rails reads one): anything but a false word is true."""
    if raw is None:
        return False
    word = raw.lower()
    if lenient:
        return word not in _RAILS_FALSE_WORDS
    if word in _FALSE_WORDS:
        return False
    if word in _TRUE_WORDS:
        return True
    raise BadRequest(f"expected true or false, got {raw!r}", code="invalid_flag")
