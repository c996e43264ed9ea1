"""Mastodon's OAuth scopes: which a client may ask for, and which a route's
required scope is covered by.

Coarse scopes (read, write, follow) imply their granular ones (read:statuses,
write:follows, ...); the deprecated `follow` implies the follow, block and
mute ones. `profile` (Mastodon 4.3) reads only the token's own account:
a route that asks for it, as verify_credentials does, is open to `profile`,
`read` and `read:accounts` alike, as Mastodon's `doorkeeper_authorize!
:profile, :read, :'read:accounts'`. Lifeboat's own tokens hold read, write
and follow: everything.
"""

from __future__ import annotations

from chalicelib.errors import ValidationFailed

READ, WRITE, FOLLOW, PUSH, PROFILE = "read", "write", "follow", "push", "profile"
DEFAULT = frozenset({READ})
_READ_PARTS = (
    "accounts",
    "blocks",
    "bookmarks",
    "favourites",
    "filters",
    "follows",
    "lists",
    "mutes",
    "notifications",
    "search",
    "statuses",
)
_WRITE_PARTS = (
    "accounts",
    "blocks",
    "bookmarks",
    "conversations",
    "favourites",
    "filters",
    "follows",
    "lists",
    "media",
    "mutes",
    "notifications",
    "reports",
    "statuses",
)
_FOLLOW_PARTS = frozenset({"follows", "blocks", "mutes"})
KNOWN = frozenset(
    {READ, WRITE, FOLLOW, PUSH, PROFILE}
    | {f"read:{part}" for part in _READ_PARTS}
    | {f"write:{part}" for part in _WRITE_PARTS}
)
MAX_SCOPES_TEXT = 1024


def parse(text: str | None, default: frozenset[str] = DEFAULT) -> frozenset[str]:
    """A space- (or plus-) separated scope list; `default` when empty; ValidationFailed
    (code invalid_scope) for a scope Mastodon does not know."""
    if text is None or not text.strip():
        return default
    if len(text) > MAX_SCOPES_TEXT:
        raise ValidationFailed("the scope list is too long", code="invalid_scope")
    # Mastodon also takes pluses between scopes in a query string, which API
    # Gateway passes on as they are.
    scopes = frozenset(part for part in text.replace("+", " ").split())
    unknown = sorted(scopes - KNOWN)
    if unknown:
        raise ValidationFailed(f"unknown scope(s): {' '.join(unknown)[:200]}", code="invalid_scope")
    return scopes


def text(scopes: frozenset[str]) -> str:
    """As Mastodon writes them: coarse first, in a stable order."""
    return " ".join(sorted(scopes, key=lambda scope: (":" in scope, scope)))


def covers(granted: frozenset[str], required: str) -> bool:
    """Whether a token holding `granted` may use a route that requires `required`."""
    if required in granted:
        return True
    if required == PROFILE:
        return bool(granted & {READ, "read:accounts"})
    family, _, part = required.partition(":")
    if not part:
        return False
    return family in granted or (family in (READ, WRITE) and part in _FOLLOW_PARTS and FOLLOW in granted)


def within(asked: frozenset[str], allowed: frozenset[str]) -> bool:
    """Whether every scope asked for lies within the app's registered ones."""
    return all(covers(allowed, scope) for scope in asked)
