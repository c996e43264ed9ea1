"""An operator setting or removing a user's token for a Mastodon primary:
the user must exist here, and the token must be one the primary could take,
before anything is encrypted and stored.

Imported on first use only (wiring.upstream_credentials): it loads the
upstream token adapter's module, which a cold start does not need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from chalicelib.accounts.service import Accounts
from chalicelib.upstream.tokens import validate_token


class TokenVault(Protocol):
    """Where the encrypted tokens are kept (upstream/tokens.py)."""

    def put(self, username: str, token: str) -> None: ...

    def delete(self, username: str) -> None: ...


class UpstreamCredentials:
    """`vault` builds the token store on first use: an unknown user is
    refused before the primary's settings are read."""

    def __init__(self, accounts: Accounts, vault: Callable[[], TokenVault]) -> None:
        self._accounts = accounts
        self._vault = vault

    def put(self, username: str, read_body: Callable[[], object]) -> None:
        """Store the token of a `{"token": "..."}` body for an existing user.
        The body is read only once the user is known: an unknown user is a
        NotFound whatever the body; then a body that is no JSON is
        BadRequest, one that holds no usable token ValidationFailed."""
        user = self._accounts.get_user(username)
        token = validate_token(read_body())
        self._vault().put(user.username, token)

    def delete(self, username: str) -> None:
        """Forget an existing user's token; NotFound for an unknown user."""
        user = self._accounts.get_user(username)
        self._vault().delete(user.username)
