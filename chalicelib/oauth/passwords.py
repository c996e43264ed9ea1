"""Checking a password against the primary's bcrypt hash (mirrored,
decrypted only for the check). An unknown user or one without a password
costs the same bcrypt round, so the answer's timing does not tell which
usernames exist."""

from __future__ import annotations

# A bcrypt hash of a random string nobody knows (cost 10, as Mastodon's).
_NO_SUCH_HASH = b"$2b$10$soTicSHdTcCl8uzt3d1A7u.1XlTvHSqqF2lrmZWhxVfj8axFR2N8K"
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; Mastodon's limit too


def matches(password: str, password_bcrypt: str | None) -> bool:
    import bcrypt  # loaded by a sign-in only, never at cold start

    candidate = password.encode("utf-8")
    if len(candidate) > MAX_PASSWORD_BYTES:
        candidate = candidate[:MAX_PASSWORD_BYTES]
    stored = password_bcrypt.encode("ascii") if password_bcrypt else _NO_SUCH_HASH
    try:
        matched = bcrypt.checkpw(candidate, stored)
    except ValueError:  # a hash bcrypt cannot read
        return False
    return matched and password_bcrypt is not None
