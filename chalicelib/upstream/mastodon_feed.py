"""A Mastodon primary's API entities as the mirror protocol's change
documents, and the cursor `MastodonChangeSource` hands the mirror. Pure: no
I/O, no HTTP (`upstream.mastodon_changes` does the requests).

The cursor is opaque to the mirror: base64url JSON of `FeedCursor`, read
back strictly. Anything that is not exactly a cursor this module wrote
decodes to None, and the source starts over (re-reading is safe: every
change is the new state of one thing).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import math
import re
import urllib.parse
from dataclasses import asdict, dataclass, field, replace

CURSOR_VERSION = 1
TAIL, CRAWL = "tail", "crawl"
ACTIVE, SUSPENDED = "active", "suspended"
_ID_RE = re.compile(r"[0-9]{1,20}")
# Mastodon's local usernames (Account::USERNAME_RE without a domain).
_USERNAME_RE = re.compile(r"[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*")
_MAX_USERNAME = 64
_LINE_BREAK_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PARAGRAPH_RE = re.compile(r"</p>\s*<p(?:\s[^>]*)?>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")
_LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


def html_to_text(content: str) -> str:
    """Mastodon's rendered `content` back to the text its author wrote.

    Mastodon renders a plain-text status as Rails' `simple_format` does:
    paragraphs (split at blank lines) in `<p>`, single newlines as `<br />`,
    text escaped. So `</p><p>` is a blank line, `<br>` a newline, and the
    other tags go (a link's hidden parts are spans, so the full URL stays;
    a mention's `@<span>alice</span>` stays `@alice`); entities decode last,
    so an escaped `&lt;b&gt;` written by the author stays text."""
    text = _PARAGRAPH_RE.sub("\n\n", content)
    text = _LINE_BREAK_RE.sub("\n", text)
    return html.unescape(_TAG_RE.sub("", text))


def mastodon_id_at(epoch_seconds: float) -> str:
    """The smallest Mastodon (Snowflake) id of a status made at that moment:
    milliseconds since the epoch in the bits above the low 16."""
    return str(max(0, int(epoch_seconds * 1000)) << 16)


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def is_local_username(value: object) -> bool:
    """A local account's `acct` is its bare username; a remote one has `@`."""
    return isinstance(value, str) and len(value) <= _MAX_USERNAME and _USERNAME_RE.fullmatch(value) is not None


def link_param(link_header: str | None, rel: str, name: str) -> str | None:
    """Query parameter `name` of the `rel` target in a Link header (where
    Mastodon puts its paging position), or None."""
    for target, relation in _LINK_RE.findall(link_header or ""):
        if relation.strip() == rel:
            values = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get(name)
            return values[-1] if values else None
    return None


def account_change(admin_account: object) -> dict | None:
    """An Admin::Account (`GET /api/v2/admin/accounts`) as an account change;
    None for a remote or unreadable one. `suspended` is Mastodon's
    suspension, as in scripts/mastodon_export.sql. It has no
    `password_bcrypt`: the API cannot see the hash, and a change without the
    key leaves the one the export sent (through the S3 inbox) alone, where
    `null` would remove it."""
    if not isinstance(admin_account, dict) or admin_account.get("domain") is not None:
        return None
    account = admin_account.get("account")
    username, created_at = admin_account.get("username"), admin_account.get("created_at")
    if not is_local_username(username) or not isinstance(created_at, str) or not isinstance(account, dict):
        return None
    display_name = account.get("display_name")
    return {
        "type": "account",
        "username": username,
        "display_name": display_name if isinstance(display_name, str) else "",
        "created_at": created_at,
        "suspended": admin_account.get("suspended") is True,
    }


def post_change(status: object) -> dict | None:
    """A Status of the local public timeline as a post change; None for a
    reblog, anything not public, a remote author or an unreadable status."""
    if not isinstance(status, dict) or status.get("reblog") is not None or status.get("visibility") != "public":
        return None
    account, content = status.get("account"), status.get("content")
    author = account.get("acct") if isinstance(account, dict) else None
    parent = status.get("in_reply_to_id")
    readable = is_id(status.get("id")) and isinstance(content, str) and isinstance(status.get("created_at"), str)
    if not (readable and is_local_username(author) and (parent is None or is_id(parent))):
        return None
    return {
        "type": "post",
        "id": status["id"],
        "author": author,
        "text": html_to_text(content),
        "created_at": status["created_at"],
        "in_reply_to": parent,
        "deleted": False,
    }


def follow_change(follower: str, followee: object) -> dict | None:
    """An Account of `follower`'s following list as a follow change; None
    for a remote account (Lifeboat mirrors the local graph only)."""
    acct = followee.get("acct") if isinstance(followee, dict) else None
    if not is_local_username(acct):
        return None
    return {"type": "follow", "follower": follower, "followee": acct, "active": True}


@dataclass(frozen=True)
class Follower:
    """The account whose following list a crawl is part-way through:
    `after` is the list's next `max_id` (a Follow id, from the Link header)."""

    id: str
    username: str
    after: str | None = None


@dataclass(frozen=True)
class Crawl:
    """A full pass over the local accounts, active then suspended: `before`
    is the admin list's position (accounts below this id remain)."""

    status: str = ACTIVE
    before: str | None = None
    follower: Follower | None = None


@dataclass(frozen=True)
class FeedCursor:
    """Where the feed is. `accounts_after`: the highest local account id
    seen (new accounts are above it); `posts_after`: the highest public
    timeline id read; `turn`: whether the next page is the tail (new
    accounts, then posts) or a step of the crawl (all accounts and follows,
    every `crawl_every_seconds`); `crawled_at`: when the last crawl ended."""

    posts_after: str
    accounts_after: str = "0"
    check_accounts: bool = True
    turn: str = TAIL
    crawled_at: float | None = None
    crawl: Crawl | None = field(default=None)

    def with_crawl(self, crawl: Crawl | None) -> FeedCursor:
        return replace(self, crawl=crawl)


def encode_cursor(cursor: FeedCursor) -> str:
    document = {"v": CURSOR_VERSION, **asdict(cursor)}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: object) -> FeedCursor | None:
    """The cursor `encode_cursor` wrote, or None for anything else."""
    if not isinstance(text, str) or not text.isascii() or len(text) > 4096:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    try:
        return _cursor_from(document)
    except _NotACursor:
        return None


class _NotACursor(Exception):
    pass


def _exact(document: object, keys: set[str]) -> dict:
    if not isinstance(document, dict) or set(document) != keys:
        raise _NotACursor
    return document


def _check(condition: bool) -> None:
    if not condition:
        raise _NotACursor


def _optional_id(value: object) -> str | None:
    _check(value is None or is_id(value))
    return value


def _cursor_from(document: object) -> FeedCursor:
    fields_ = _exact(document, {"v", "posts_after", "accounts_after", "check_accounts", "turn", "crawled_at", "crawl"})
    _check(fields_["v"] == CURSOR_VERSION and fields_["turn"] in (TAIL, CRAWL))
    _check(is_id(fields_["posts_after"]) and is_id(fields_["accounts_after"]))
    _check(isinstance(fields_["check_accounts"], bool))
    crawled_at = fields_["crawled_at"]
    if crawled_at is not None:
        _check(isinstance(crawled_at, int | float) and not isinstance(crawled_at, bool))
        _check(math.isfinite(crawled_at) and crawled_at >= 0)
    return FeedCursor(
        posts_after=fields_["posts_after"],
        accounts_after=fields_["accounts_after"],
        check_accounts=fields_["check_accounts"],
        turn=fields_["turn"],
        crawled_at=None if crawled_at is None else float(crawled_at),
        crawl=None if fields_["crawl"] is None else _crawl_from(fields_["crawl"]),
    )


def _crawl_from(document: object) -> Crawl:
    fields_ = _exact(document, {"status", "before", "follower"})
    _check(fields_["status"] in (ACTIVE, SUSPENDED))
    follower = fields_["follower"]
    if follower is not None:
        follower_fields = _exact(follower, {"id", "username", "after"})
        _check(is_id(follower_fields["id"]) and is_local_username(follower_fields["username"]))
        _check(fields_["status"] == ACTIVE)
        follower = Follower(follower_fields["id"], follower_fields["username"], _optional_id(follower_fields["after"]))
    return Crawl(fields_["status"], _optional_id(fields_["before"]), follower)
