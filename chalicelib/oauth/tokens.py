"""OAuth access tokens: one per app and sign-in, each with its scopes.

A user's token is an item of the same kind as Lifeboat's own and the
mirrored ones (`TOKEN#<sha256>`), so every route authenticates it with the
same one GetItem; it also names the app it was issued to, for revocation. A
client_credentials token acts for the app alone and names no user: it is
kept apart (`APPTOKEN#<sha256>`), so no user route can accept it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

OAUTH_SOURCE = "oauth"
TOKEN_PREFIX = "lbo_"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class AccessToken:
    token_sha256: str
    client_id: str
    scopes: frozenset[str]
    created_at: int  # epoch seconds, as the Token entity's created_at
    username: str | None  # None: a client_credentials token


def new_access_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)
