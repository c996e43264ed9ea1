"""Opaque keyset cursors and page-size parsing for the native API.

A cursor is the id of the last post a page showed; the next page is "posts
with a smaller id". Ids never change, so pages neither skip nor repeat a
post while new ones (with larger ids) keep arriving.
"""

from __future__ import annotations

import base64
import binascii

from chalicelib.core import ids
from chalicelib.core.parsing import MAX_INTEGER_DIGITS, ascii_integer
from chalicelib.errors import BadRequest, ValidationFailed

_CURSOR_VERSION = "v1:"


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode((_CURSOR_VERSION + last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    last_id = decoded.removeprefix(_CURSOR_VERSION)
    if not decoded.startswith(_CURSOR_VERSION) or not ids.is_ulid(last_id):
        raise BadRequest("cursor is not one this API returned", code="invalid_cursor")
    return last_id


def parse_limit(raw: str | None, default: int, maximum: int, *, clamp: bool = False) -> int:
    """The page size: `default` when absent. The native API takes only ASCII
    digits from 1 to `maximum` and answers anything else, however it is
    spelt, with BadRequest. Mastodon clamps instead (`clamp=True`): empty
    text is the default, a negative size is taken as its absolute value
    (Mastodon's `params[:limit].to_i.abs`), 0 or 1000 the nearest allowed
    size, and only text that is no number (at most 19 ASCII digits) is
    refused, with ValidationFailed."""
    if raw is None or (clamp and raw == ""):
        return default
    if clamp:
        return _clamped_limit(raw, maximum)
    size = ascii_integer(raw)
    if size is None or not 1 <= size <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum} in ASCII digits", code="invalid_limit")
    return size


def _clamped_limit(raw: str, maximum: int) -> int:
    size = ascii_integer(raw, signed=True)
    if size is None:
        raise ValidationFailed(
            f"limit must be an integer of at most {MAX_INTEGER_DIGITS} ASCII digits", code="invalid_limit"
        )
    return max(1, min(abs(size), maximum))
