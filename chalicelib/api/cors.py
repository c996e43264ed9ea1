"""CORS as Mastodon sends it (its config/initializers/cors.rb, rack-cors):
any origin, no credentials, on the paths browser apps call; the preflight
OPTIONS answered by the app itself, locally and on API Gateway alike.

Mastodon lists `/api/*`, `/oauth/token` and `/.well-known/*`; Lifeboat adds
`/oauth/revoke` (Elk and Phanpy revoke at sign-out from the browser) and
`/nodeinfo/*` (read cross-origin by the same apps). `/admin/*` and the
authorize page are never cross-origin: a person's browser signs in on the
page itself.
"""

from __future__ import annotations

import re

from chalice import Response

CROSS_ORIGIN_PREFIXES = ("/api/", "/.well-known/", "/nodeinfo/")
CROSS_ORIGIN_PATHS = frozenset({"/oauth/token", "/oauth/revoke"})
ALLOWED_METHODS = "POST, PUT, DELETE, GET, PATCH, OPTIONS"
# Asked for when the preflight names none: what Mastodon clients send.
DEFAULT_ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key"
EXPOSED_HEADERS = "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id"
# rack-cors' default; browsers cap it lower (Chromium at 2 hours, too).
MAX_AGE_SECONDS = 7200
# A field-name list (RFC 9110 tokens, commas, spaces): echoed back only then,
# so a preflight cannot write arbitrary text into a response header.
_HEADER_LIST_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z, ]{1,1024}$")


def is_cross_origin(path: str) -> bool:
    """Whether browsers on any origin may call `path`."""
    return path in CROSS_ORIGIN_PATHS or path.startswith(CROSS_ORIGIN_PREFIXES)


def cross_origin_headers(path: str) -> dict[str, str]:
    """The headers every answer on `path` carries (none off the CORS paths)."""
    if not is_cross_origin(path):
        return {}
    return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSED_HEADERS}


def with_cross_origin_headers(response: Response, path: str) -> Response:
    """`response` with the CORS headers of `path`, whatever its status: a
    browser hides an error answer without them, and the app with it."""
    response.headers = {**(response.headers or {}), **cross_origin_headers(path)}
    return response


def preflight(path: str, requested_headers: str | None) -> Response | None:
    """The answer to a preflight OPTIONS on `path`, or None off the CORS
    paths. The headers asked for are allowed (Mastodon allows any)."""
    if not is_cross_origin(path):
        return None
    asked = (requested_headers or "").strip()
    allowed = asked if _HEADER_LIST_RE.match(asked) else DEFAULT_ALLOWED_HEADERS
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": allowed,
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        "Vary": "Access-Control-Request-Headers",
    }
    return Response(body="", status_code=200, headers=headers)
