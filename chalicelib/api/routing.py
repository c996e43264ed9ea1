"""Registering views: `app.route` with domain errors rendered as responses
(ours, or Mastodon's), and every route's access declared with it: `admin=True`
routes check the admin token, and `scope=` routes the token's scope (read,
write, follow, or a granular one such as write:statuses, which the coarse
one covers: chalicelib/oauth/scopes.py), before the view runs;
`scope=PUBLIC` routes need no token."""

from __future__ import annotations

import functools

from chalicelib import errors, wiring
from chalicelib.accounts.store import FOLLOW, READ, WRITE
from chalicelib.api import cors
from chalicelib.api.errors import as_domain_error, error_response, mastodon_error_response, oauth_error_response
from chalicelib.api.fallback import ANY_CONTENT_TYPE, preflight_view
from chalicelib.api.requests import authorization
from chalicelib.oauth import scopes as oauth_scopes
from chalicelib.observability import logger

PUBLIC = "public"
ADMIN = "admin"
SCOPES = frozenset({PUBLIC, ADMIN, READ, WRITE, FOLLOW}) | oauth_scopes.KNOWN


def router(app, render_error=error_response):
    """`app.route`, with domain errors turned into JSON error responses
    (`render_error` shapes them: ours, or Mastodon's). `admin=True` refuses
    any request without the admin token, and `scope` (read, write, follow)
    any token without that scope, before the view reads anything. Every
    route says one of them (or `scope=PUBLIC`)."""

    def route(path: str, *, admin: bool = False, scope: str | None = None, **options):
        access = ADMIN if admin else scope
        if access not in SCOPES:
            raise ValueError(f"route {path} must declare its scope (one of {sorted(SCOPES)}), or admin=True")

        def register(view):
            @functools.wraps(view)
            def guarded(*args, **kwargs):
                try:
                    if access == ADMIN:
                        wiring.accounts().require_admin(authorization(app.current_request))
                    elif access != PUBLIC:
                        wiring.accounts().require_scope(authorization(app.current_request), access)
                    return view(*args, **kwargs)
                except (errors.LifeboatError, errors.StoreUnavailable) as exc:
                    if isinstance(exc, errors.StoreUnavailable):
                        logger.warning("store unavailable", extra={"reason": str(exc)})
                    return render_error(as_domain_error(exc))

            guarded.scope = access
            declared = app.route(path, **options)(guarded)
            _declare_preflight(app, path)  # after the route: a view may declare OPTIONS itself
            return declared

        return register

    return route


def _declare_preflight(app, path: str) -> None:
    """OPTIONS on `path`, if browsers may call it and it has none: on API
    Gateway a resource answers only its declared methods."""
    if not cors.is_cross_origin(path) or "OPTIONS" in app.routes.get(path, {}):
        return

    def preflight(**_path_parameters):
        return preflight_view(app.current_request)

    preflight.scope = PUBLIC
    app.route(path, methods=["OPTIONS"], content_types=ANY_CONTENT_TYPE)(preflight)


def mastodon_router(app):
    """`app.route` for the Mastodon API: domain errors in Mastodon's shape."""
    return router(app, mastodon_error_response)


def oauth_router(app):
    """`app.route` for the OAuth token and revocation endpoints: errors in RFC 6749's shape."""
    return router(app, oauth_error_response)
