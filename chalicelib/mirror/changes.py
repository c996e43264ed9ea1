"""The mirror protocol's change documents, parsed and validated. Pure.

Each change is the new state of one thing on the primary (an account, a
credential, a follow edge, a post), so applying one twice changes nothing.
Anything that is not one of the four documents exactly is a
`MalformedChange` with a reason: the mirror skips it, logs and counts it,
and goes on with the feed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from chalicelib.core import ids
from chalicelib.core.clock import parse_iso
from chalicelib.core.models import is_username

# What Lifeboat keeps of a primary's text fields. A primary may allow longer
# posts than MAX_POST_CHARS; a mirrored post is shown, never re-validated.
MAX_TEXT_CHARS = 5000
MAX_DISPLAY_NAME_CHARS = 100
MAX_UPSTREAM_ID_CHARS = 255
# A bcrypt hash is 60 characters; anything much longer is not one.
MAX_BCRYPT_CHARS = 100
KNOWN_SCOPES = frozenset({"read", "write", "follow", "push"})
Parsed = TypeVar("Parsed")

_SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")
_BCRYPT_RE = re.compile(r"\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}")
# Printable ASCII: ids are opaque to us but go into keys and URLs.
_UPSTREAM_ID_RE = re.compile(r"[\x21-\x7e]{1,255}")
# What a feed must never carry (XML 1.0's forbidden characters, lone
# surrogates, DEL and the C1 controls), as for posts written here.
_FORBIDDEN_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Mastodon's scopes include sub-scopes ("read:statuses"); the top-level
# word is what Lifeboat enforces.
_SCOPE_RE = re.compile(r"[a-z]{1,20}(:[a-z_]{1,40})?")


class MalformedChange(ValueError):
    """A change the mirror cannot apply; `reason` says why (never the
    change's values: a credential's fields must not reach the logs)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Untold(Enum):
    """A field an account document did not carry. Two sources speak about
    one account (a Mastodon primary's API, which knows no password hashes,
    and its database export through the S3 inbox): a field one of them
    leaves out keeps what the other said, where `null` would remove it."""

    UNTOLD = "untold"


UNTOLD = Untold.UNTOLD


@dataclass(frozen=True)
class AccountChange:
    username: str
    display_name: str
    created_at: str
    # UNTOLD: the stored value stays (a new account is not suspended).
    suspended: bool | Untold = UNTOLD
    # A bcrypt hash sets it, None removes it, UNTOLD leaves it alone.
    password_bcrypt: str | Untold | None = UNTOLD

    def __repr__(self) -> str:
        # Never the hash itself: a repr may reach a log line.
        shown = {UNTOLD: "<untold>", None: None}
        hash_shown = "<set>" if isinstance(self.password_bcrypt, str) else shown[self.password_bcrypt]
        suspended = "<untold>" if self.suspended is UNTOLD else self.suspended
        return f"AccountChange(username={self.username!r}, suspended={suspended}, password_bcrypt={hash_shown})"


@dataclass(frozen=True)
class CredentialChange:
    username: str
    token_sha256: str
    scopes: frozenset[str]
    revoked: bool

    def __repr__(self) -> str:
        return f"CredentialChange(username={self.username!r}, scopes={sorted(self.scopes)}, revoked={self.revoked})"


@dataclass(frozen=True)
class FollowChange:
    follower: str
    followee: str
    active: bool


@dataclass(frozen=True)
class PostChange:
    upstream_id: str
    author: str
    text: str
    created_at: str
    in_reply_to: str | None
    deleted: bool


Change = AccountChange | CredentialChange | FollowChange | PostChange

_FIELDS = {
    "account": frozenset({"type", "username", "display_name", "created_at", "suspended", "password_bcrypt"}),
    "credential": frozenset({"type", "username", "token_sha256", "scopes", "revoked"}),
    "follow": frozenset({"type", "follower", "followee", "active"}),
    "post": frozenset({"type", "id", "author", "text", "created_at", "in_reply_to", "deleted"}),
}
# Optional fields and their default when absent (UNTOLD: the stored value stays).
_OPTIONAL = {"display_name": "", "password_bcrypt": UNTOLD, "in_reply_to": None, "suspended": UNTOLD}


def parse_change(document: object) -> Change:
    """One change document as its dataclass, or MalformedChange."""
    if not isinstance(document, dict):
        raise MalformedChange("a change must be a JSON object")
    kind = document.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise MalformedChange("unknown change type")
    fields = _FIELDS[kind]
    unknown = [name for name in document if name not in fields]
    if unknown:
        # Names only, bounded: a name may be anything the primary sent.
        raise MalformedChange(f"unknown field(s) in a {kind} change")
    missing = sorted(name for name in fields - set(document) - set(_OPTIONAL))
    if missing:
        raise MalformedChange(f"{kind} change lacks {', '.join(missing)}")
    values = {name: document.get(name, _OPTIONAL.get(name)) for name in fields - {"type"}}
    return _PARSERS[kind](values)


def _account(values: dict) -> AccountChange:
    return AccountChange(
        username=_username(values["username"], "username"),
        display_name=_text(values["display_name"], "display_name", MAX_DISPLAY_NAME_CHARS, allow_empty=True),
        created_at=_time(values["created_at"], "created_at"),
        suspended=_untold_or(values["suspended"], lambda value: _flag(value, "suspended")),
        password_bcrypt=_untold_or(values["password_bcrypt"], _bcrypt),
    )


def _credential(values: dict) -> CredentialChange:
    digest = values["token_sha256"]
    if not isinstance(digest, str) or not _SHA256_HEX_RE.fullmatch(digest):
        raise MalformedChange("token_sha256 must be 64 lowercase hex digits")
    return CredentialChange(
        username=_username(values["username"], "username"),
        token_sha256=digest,
        scopes=_scopes(values["scopes"]),
        revoked=_flag(values["revoked"], "revoked"),
    )


def _follow(values: dict) -> FollowChange:
    follower = _username(values["follower"], "follower")
    followee = _username(values["followee"], "followee")
    if follower == followee:
        raise MalformedChange("an account cannot follow itself")
    return FollowChange(follower, followee, _flag(values["active"], "active"))


def _post(values: dict) -> PostChange:
    parent = values["in_reply_to"]
    deleted = _flag(values["deleted"], "deleted")
    return PostChange(
        upstream_id=_upstream_id(values["id"], "id"),
        author=_username(values["author"], "author"),
        # A deleted post's text is not kept; the primary may have blanked it.
        text="" if deleted else _text(values["text"], "text", MAX_TEXT_CHARS, allow_empty=False),
        created_at=_time(values["created_at"], "created_at"),
        in_reply_to=None if parent is None else _upstream_id(parent, "in_reply_to"),
        deleted=deleted,
    )


_PARSERS = {"account": _account, "credential": _credential, "follow": _follow, "post": _post}


def _username(value: object, name: str) -> str:
    if not is_username(value):
        raise MalformedChange(f"{name} is not a valid username")
    return value


def _flag(value: object, name: str) -> bool:
    # bool only: 0, 1, "true" and null are not flags.
    if not isinstance(value, bool):
        raise MalformedChange(f"{name} must be true or false")
    return value


def _text(value: object, name: str, max_chars: int, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise MalformedChange(f"{name} must be a string")
    if len(value) > max_chars:
        raise MalformedChange(f"{name} is longer than {max_chars} characters")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not allow_empty and not value.strip():
        raise MalformedChange(f"{name} is empty")
    if _FORBIDDEN_CHARS_RE.search(value):
        raise MalformedChange(f"{name} contains a forbidden character")
    return value


def _time(value: object, name: str) -> str:
    """The time as our own ISO text (UTC, milliseconds), so it sorts and
    makes the post's id; a time before 1970 or past ULIDs' range is refused."""
    if not isinstance(value, str) or len(value) > 40:
        raise MalformedChange(f"{name} must be an ISO 8601 time")
    moment = parse_iso(value)
    if moment is None:
        raise MalformedChange(f"{name} must be an ISO 8601 time")
    try:
        millis = int(moment.timestamp() * 1000)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedChange(f"{name} is out of range") from exc
    if not 0 <= millis < 1 << 48:
        raise MalformedChange(f"{name} is out of range")
    try:
        return ids.iso_from_millis(millis)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedChange(f"{name} is out of range") from exc


def _upstream_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not _UPSTREAM_ID_RE.fullmatch(value):
        raise MalformedChange(f"{name} must be 1 to {MAX_UPSTREAM_ID_CHARS} printable ASCII characters")
    return value


def _untold_or(value: object, parse: Callable[[object], Parsed]) -> Parsed | Untold:
    return UNTOLD if value is UNTOLD else parse(value)


def _bcrypt(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_BCRYPT_CHARS or not _BCRYPT_RE.fullmatch(value):
        raise MalformedChange("password_bcrypt must be a bcrypt hash or null")
    return value


def _scopes(value: object) -> frozenset[str]:
    if not isinstance(value, str) or len(value) > 1000:
        raise MalformedChange("scopes must be a space-separated string")
    words = value.split(" ")
    if not all(_SCOPE_RE.fullmatch(word) for word in words):
        raise MalformedChange("scopes must be space-separated scope names")
    # "read:statuses" grants part of read; Lifeboat enforces whole scopes only,
    # so a sub-scope alone grants nothing here.
    return frozenset(word for word in words if word in KNOWN_SCOPES)
