"""The HTML a person sees: the sign-in form, an error, and the code for an
out-of-band app. Every value is escaped; the page may not be framed, runs no
script, and may only submit its form to us (and follow the redirect to the
app's registered URI, which browsers check against form-action too)."""

from __future__ import annotations

import html
import urllib.parse
from dataclasses import dataclass, field

from chalicelib.oauth import redirects

HTML = "text/html; charset=utf-8"
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "label{display:block;margin-top:1rem}input{width:100%;padding:.5rem;box-sizing:border-box}"
    "button{margin-top:1.5rem;padding:.6rem 1.2rem}.error{color:#a00}code{word-break:break-all}"
)


@dataclass(frozen=True)
class Page:
    """What the authorize endpoint answers: an HTML page, or a redirect."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def headers(form_target: str | None = None) -> dict[str, str]:
    """The page's security headers; `form_target` is the registered
    redirect URI the form's answer redirects to."""
    form_action = "'self'" + (f" {_source_of(form_target)}" if form_target and form_target != redirects.OOB else "")
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action {form_action}"
    )
    return {
        "Content-Type": HTML,
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _source_of(uri: str) -> str:
    """A CSP source for a redirect URI: its origin, or its scheme for a native app's."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        # An icon of our own, or the browser asks for /favicon.ico and logs a 404.
        # Relative, so it resolves under a stage path (/api/oauth/...) too.
        '<link rel="icon" href="../instance/thumbnail.svg" type="image/svg+xml"></head>'
        # One <main> landmark: assistive technology jumps to it (axe: "region").
        f"<body><main>{body}</main></body></html>\n"
    )


def sign_in_form(
    action: str, app_name: str, scopes_text: str, hidden: dict[str, str], username: str = "", error: str | None = None
) -> str:
    fields = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in hidden.items()
    )
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _document(
        "Sign in to Lifeboat",
        f"<h1>Sign in</h1><p><strong>{html.escape(app_name)}</strong> asks to use your account with these "
        f"permissions: <code>{html.escape(scopes_text)}</code>.</p>{problem}"
        f'<form method="post" action="{html.escape(action)}">'
        f"{fields}"
        '<label for="username">Username</label>'
        f'<input id="username" name="username" autocomplete="username" required value="{html.escape(username)}">'
        '<label for="password">Password, or the sign-in code an administrator gave you</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<button type="submit">Sign in and authorize</button></form>',
    )


def problem(message: str) -> str:
    return _document(
        "Cannot sign in",
        f'<h1>This sign-in link does not work</h1><p class="error" role="alert">{html.escape(message)}</p>'
        "<p>Go back to the app and start signing in again.</p>",
    )


def out_of_band_code(app_name: str, code: str) -> str:
    return _document(
        "Authorization code",
        f"<h1>Authorization code</h1><p>Copy this code into <strong>{html.escape(app_name)}</strong>. "
        f'It works once, within a minute.</p><p><code id="code">{html.escape(code)}</code></p>',
    )
