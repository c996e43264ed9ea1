"""OAuth applications (clients): registering one from `POST /api/v1/apps`
fields, and the Application entity Mastodon answers with."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from chalicelib.errors import ValidationFailed
from chalicelib.oauth import redirects, scopes

MAX_NAME_CHARS = 60  # Mastodon's limit
MAX_WEBSITE_CHARS = 2000


@dataclass(frozen=True)
class App:
    client_id: str
    client_secret_sha256: str
    name: str
    website: str | None
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    created_at: str

    def entity(self) -> dict:
        """Mastodon's Application (no secret: that is shown once, at registration)."""
        return {
            "id": self.client_id,
            "name": self.name,
            "website": self.website,
            "scopes": sorted(self.scopes, key=lambda scope: (":" in scope, scope)),
            "redirect_uri": "\n".join(self.redirect_uris),
            "redirect_uris": list(self.redirect_uris),
            # Lifeboat serves no Web Push; the deprecated field is still required.
            "vapid_key": "",
        }

    def credential_entity(self, client_secret: str) -> dict:
        return {
            **self.entity(),
            "client_id": self.client_id,
            "client_secret": client_secret,
            "client_secret_expires_at": 0,
        }


def new_client_id() -> str:
    return secrets.token_urlsafe(32)


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def registration(fields: dict[str, list], created_at: str, secret_sha256: str) -> App:
    """An App from the request's fields (form, multipart or JSON: each a
    list of values); ValidationFailed in Mastodon's words otherwise."""
    name = _one_text(fields, "client_name").strip()
    if not name:
        raise ValidationFailed("Validation failed: Application name can't be blank", code="invalid_client_metadata")
    if len(name) > MAX_NAME_CHARS:
        raise ValidationFailed(
            f"Validation failed: Application name is too long (maximum is {MAX_NAME_CHARS})",
            code="invalid_client_metadata",
        )
    raw_uris = fields.get("redirect_uris", fields.get("redirect_uris[]"))
    if raw_uris is None:
        raise ValidationFailed("Validation failed: Redirect URI can't be blank", code="invalid_redirect_uri")
    uris = redirects.parse_list(list(raw_uris))
    website = _one_text(fields, "website").strip() or None
    if website is not None and (len(website) > MAX_WEBSITE_CHARS or not website.startswith(("https://", "http://"))):
        raise ValidationFailed("Validation failed: Website must be an http(s) URL", code="invalid_client_metadata")
    granted = scopes.parse(_one_text(fields, "scopes") or None)
    return App(new_client_id(), secret_sha256, name, website, tuple(uris), granted, created_at)


def _one_text(fields: dict[str, list], name: str) -> str:
    values = fields.get(name) or [""]
    value = values[0]
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string", code="invalid_client_metadata")
    return value
