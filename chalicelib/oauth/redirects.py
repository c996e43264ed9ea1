"""Redirect URIs: which an app may register, and the URL a code is sent to.

Allowed: OOB (the code is shown on a page), https, http on loopback only
(RFC 8252: plain http elsewhere would expose the code on the network), and
private-use schemes of native apps (`com.example.app:/cb`, `elk://`). Refused:
schemes a browser runs or reads locally (javascript:, data:, vbscript:,
file:), fragments, whitespace and control characters.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

from chalicelib.errors import ValidationFailed

OOB = "urn:ietf:wg:oauth:2.0:oob"
MAX_URI_CHARS = 2000
MAX_URIS = 10
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_REFUSED_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob"})
_LOOPBACK_NAMES = frozenset({"localhost"})


def parse_list(value: object) -> list[str]:
    """`redirect_uris` as a whitespace-separated string or a list of them,
    each validated; ValidationFailed (invalid_redirect_uri) otherwise."""
    if isinstance(value, str):
        uris = value.split()
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        uris = [uri for item in value for uri in item.split()]
    else:
        raise _refused("redirect_uris must be a string or a list of strings")
    if not uris:
        raise _refused("redirect_uris can't be blank")
    if len(uris) > MAX_URIS:
        raise _refused(f"at most {MAX_URIS} redirect URIs")
    for uri in uris:
        validate(uri)
    return list(dict.fromkeys(uris))


def validate(uri: str) -> str:
    if uri == OOB:
        return uri
    if len(uri) > MAX_URI_CHARS or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        raise _refused("a redirect URI must be one line of at most 2000 characters")
    scheme, sep, rest = uri.partition(":")
    if not sep or not _SCHEME.fullmatch(scheme) or not rest:
        raise _refused("a redirect URI must be an absolute URI")
    scheme = scheme.lower()
    if scheme in _REFUSED_SCHEMES:
        raise _refused(f"the {scheme}: scheme is not allowed")
    try:
        parts = urllib.parse.urlsplit(uri)
        host = parts.hostname
    except ValueError as exc:
        raise _refused("a redirect URI must be an absolute URI") from exc
    if parts.fragment or "#" in uri:
        raise _refused("a redirect URI must not contain a fragment")
    if scheme in ("http", "https") and not host:
        raise _refused("an http(s) redirect URI needs a host")
    if scheme == "http" and not _is_loopback(host):
        raise _refused("http redirect URIs are allowed on loopback only; use https")
    return uri


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def with_code(uri: str, code: str, state: str | None) -> str:
    """The registered URI with `code` (and `state`) added to its query."""
    parts = urllib.parse.urlsplit(uri)
    added = urllib.parse.urlencode({"code": code, **({"state": state} if state is not None else {})})
    query = f"{parts.query}&{added}" if parts.query else added
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _refused(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_redirect_uri")
