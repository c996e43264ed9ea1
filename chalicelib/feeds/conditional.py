"""The conditional-GET decision (RFC 9110 section 13): may a GET or HEAD answer 304?

Pure and framework-free, so the decision table is tested with plain dicts.
Only GET and HEAD may use it: for other methods these preconditions mean
something else (412), which no Lifeboat route needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# An entity-tag, optionally weak: W/"opaque". Anything unquoted is not an
# entity-tag and so never matches.
_ENTITY_TAG_RE = re.compile(r'(?:W/)?"[^"]*"')


def is_not_modified(request_headers: Mapping[str, str], *, etag: str, last_modified: str | None) -> bool:
    """True when the client's copy is current and a 304 should be sent.

    ``etag`` is the current entity-tag as sent in ETag; ``last_modified`` the
    HTTP date sent in Last-Modified, or None when that date cannot yet tell
    two versions apart (then If-Modified-Since never gives a 304: a 200 is
    always a correct answer to a conditional GET). If-None-Match, when
    present, decides alone (If-Modified-Since is then ignored, as RFC 9110
    requires); it uses the weak comparison, so ``W/"x"`` matches ``"x"``, and
    ``*`` matches because a feed always exists. An unparseable
    If-Modified-Since is ignored.
    Header names are matched case-insensitively.
    """
    if_none_match = _header(request_headers, "if-none-match")
    if if_none_match is not None:
        return _any_tag_matches(if_none_match, etag)
    if_modified_since = _header(request_headers, "if-modified-since")
    if if_modified_since is None or last_modified is None:
        return False
    since = _parse_http_date(if_modified_since)
    return since is not None and _parse_http_date(last_modified) <= since


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _any_tag_matches(field_value: str, etag: str) -> bool:
    if field_value.strip() == "*":
        return True
    current = _opaque(etag)
    return any(_opaque(tag) == current for tag in _ENTITY_TAG_RE.findall(field_value))


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def _parse_http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # "-0000" and the obsolete formats carry no zone; HTTP dates are all GMT.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
