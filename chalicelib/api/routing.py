"""Registering views: `app.route` with domain errors rendered as responses
(ours, or Mastodon's), and `admin=True` routes that check the admin token
before the view runs."""

from __future__ import annotations

import functools

from chalicelib import errors, wiring
from chalicelib.api.errors import as_domain_error, error_response, mastodon_error_response
from chalicelib.api.requests import authorization
from chalicelib.observability import logger


def router(app, render_error=error_response):
    """`app.route`, with domain errors turned into JSON error responses
    (`render_error` shapes them: ours, or Mastodon's). `admin=True` refuses
    any request without the admin token, before the view reads anything."""

    def route(path: str, *, admin: bool = False, **options):
        def register(view):
            @functools.wraps(view)
            def guarded(*args, **kwargs):
                try:
                    if admin:
                        wiring.accounts().require_admin(authorization(app.current_request))
                    return view(*args, **kwargs)
                except (errors.LifeboatError, errors.StoreUnavailable) as exc:
                    if isinstance(exc, errors.StoreUnavailable):
                        logger.warning("store unavailable", extra={"reason": str(exc)})
                    return render_error(as_domain_error(exc))

            return app.route(path, **options)(guarded)

        return register

    return route


def mastodon_router(app):
    """`app.route` for the Mastodon API: domain errors in Mastodon's shape."""
    return router(app, mastodon_error_response)
