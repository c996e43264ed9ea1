"""PKCE (RFC 7636), S256 only, as Mastodon: the challenge is the unpadded
base64url SHA-256 of the verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

S256 = "S256"
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def is_challenge(value: str) -> bool:
    return bool(_CHALLENGE.fullmatch(value))


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def verifies(challenge: str, verifier: str | None) -> bool:
    if verifier is None or not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(challenge_of(verifier), challenge)
