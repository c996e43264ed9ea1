"""Accounts and an operator's upstream tokens over the in-memory user store:
which check comes first decides what an operator is told."""

from __future__ import annotations

import pytest

from chalicelib.accounts.service import Accounts, TokenCache
from chalicelib.accounts.tokens import bearer_token, hashes_match, token_hash
from chalicelib.accounts.upstream_credentials import UpstreamCredentials
from chalicelib.errors import NotFound, Unauthorized, ValidationFailed
from devtools.fakes.accounts import InMemoryUserStore

NOW = "2026-11-23T00:00:00.000Z"
ADMIN_TOKEN = "admin-token-for-tests"


class RecordingVault:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def put(self, username: str, token: str) -> None:
        self.tokens[username] = token

    def delete(self, username: str) -> None:
        self.tokens.pop(username, None)


@pytest.fixture
def accounts() -> Accounts:
    return Accounts(InMemoryUserStore(), token_hash(ADMIN_TOKEN), lambda: NOW, TokenCache(60, 900))


def test_a_created_users_token_authenticates_until_rotated(accounts):
    _, token = accounts.create_user({"username": "alice"})
    assert accounts.authenticate(f"Bearer {token}") == "alice"

    rotated = accounts.rotate_token("alice")

    assert accounts.authenticate(f"Bearer {rotated}") == "alice"
    with pytest.raises(Unauthorized):
        accounts.authenticate(f"Bearer {token}")


def test_the_admin_token_is_required_and_a_user_token_is_not_one(accounts):
    _, user_token = accounts.create_user({"username": "alice"})
    accounts.require_admin(f"Bearer {ADMIN_TOKEN}")
    for refused in (None, "Bearer", f"Bearer {user_token}"):
        with pytest.raises(Unauthorized):
            accounts.require_admin(refused)


def test_an_unset_admin_token_refuses_every_admin_request():
    closed = Accounts(InMemoryUserStore(), "", lambda: NOW, TokenCache(60, 900))
    with pytest.raises(Unauthorized):
        closed.require_admin(f"Bearer {ADMIN_TOKEN}")


def test_tokens_are_read_from_bearer_headers_and_compared_by_hash():
    assert bearer_token("  bearer  lb_abc ") == "lb_abc"
    assert hashes_match(token_hash("lb_abc"), token_hash("lb_abc"))
    assert not hashes_match(token_hash("lb_abc"), token_hash("lb_abd"))


def test_an_upstream_token_is_stored_for_an_existing_user(accounts):
    accounts.create_user({"username": "alice"})
    vault = RecordingVault()

    UpstreamCredentials(accounts, lambda: vault).put("alice", lambda: {"token": "  masto-token "})

    assert vault.tokens == {"alice": "masto-token"}


def test_an_unknown_user_is_refused_before_the_body_or_the_vault_is_touched(accounts):
    def unreadable_body():
        raise AssertionError("the body was read for an unknown user")

    def no_vault():
        raise AssertionError("the vault was built for an unknown user")

    credentials = UpstreamCredentials(accounts, no_vault)
    with pytest.raises(NotFound):
        credentials.put("nobody", unreadable_body)
    with pytest.raises(NotFound):
        credentials.delete("nobody")


def test_a_body_without_a_usable_token_stores_nothing(accounts):
    accounts.create_user({"username": "alice"})
    vault = RecordingVault()

    with pytest.raises(ValidationFailed):
        UpstreamCredentials(accounts, lambda: vault).put("alice", lambda: {"token": ""})

    assert vault.tokens == {}


def test_deleting_an_upstream_token_forgets_it(accounts):
    accounts.create_user({"username": "alice"})
    vault = RecordingVault()
    credentials = UpstreamCredentials(accounts, lambda: vault)
    credentials.put("alice", lambda: {"token": "masto-token"})

    credentials.delete("alice")

    assert vault.tokens == {}
