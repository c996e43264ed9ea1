"""Authorization codes and admins' sign-in codes: made, and what they are bound to.

Both are 256 random bits, shown once and stored only as SHA-256 digests. An
authorization code lives 60 s and is redeemed once, by the client it was
issued to, for the redirect URI, scopes, user and PKCE challenge it was
issued with. A sign-in code stands in for a password once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

AUTHORIZATION_CODE_SECONDS = 60
SIGN_IN_CODE_PREFIX = "lbsc_"


@dataclass(frozen=True)
class AuthorizationCode:
    code_sha256: str
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    username: str
    code_challenge: str | None
    expires_at: int  # epoch seconds


@dataclass(frozen=True)
class SignInCode:
    code_sha256: str
    username: str
    expires_at: int


def new_authorization_code() -> str:
    return secrets.token_urlsafe(32)


def new_sign_in_code() -> str:
    # The prefix tells the authorize form a code from a password, and lets
    # secret scanners recognise a leaked one.
    return SIGN_IN_CODE_PREFIX + secrets.token_urlsafe(32)


def is_sign_in_code(secret: str) -> bool:
    return secret.startswith(SIGN_IN_CODE_PREFIX)
