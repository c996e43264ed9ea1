"""The authorize form's CSRF protection, with no server-side secret:
a double-submitted cookie. The page sets a random nonce in a SameSite=Strict
cookie, and its form carries an HMAC of the authorization request keyed by
that nonce. Another site can neither read the cookie nor make the browser
send it, so it cannot forge a form this check accepts; and the HMAC binds
the form to the request it was shown for (client, redirect URI, scopes,
state, challenge)."""

from __future__ import annotations

import hashlib
import hmac
import http.cookies
import json
import secrets

COOKIE = "lifeboat_oauth"
FIELD = "authenticity_token"
_NONCE_CHARS = 43


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def nonce_from(cookie_header: str | None) -> str | None:
    """Our nonce from a Cookie header, if it holds a well-formed one."""
    if not cookie_header:
        return None
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(cookie_header)
    except http.cookies.CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and len(morsel.value) == _NONCE_CHARS else None


def set_cookie(nonce: str, path: str, secure: bool) -> str:
    return f"{COOKIE}={nonce}; Path={path}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def token_for(nonce: str, bound: dict[str, str]) -> str:
    message = json.dumps(bound, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(nonce.encode("ascii"), message, hashlib.sha256).hexdigest()


def verifies(nonce: str | None, bound: dict[str, str], token: str | None) -> bool:
    if nonce is None or not token:
        return False
    return hmac.compare_digest(token_for(nonce, bound), token)
