"""Bearer tokens: made, hashed and compared.

Tokens are 256 random bits, shown once, stored only as SHA-256 hashes (a
fast hash is enough: the input has far too much entropy to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from chalicelib.errors import Unauthorized

TOKEN_PREFIX = "lb_"  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    # The prefix lets secret scanners recognise a leaked Lifeboat token.
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hashes_match(given: str, expected: str) -> bool:
    """Compared in constant time, so the answer's timing tells nothing of
    how much of a guess was right."""
    return hmac.compare_digest(given, expected)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an Authorization: Bearer <token> header is required", code="missing_token")
    return token.strip()
