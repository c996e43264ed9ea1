"""One contract, two implementations: the OAuth server's store on DynamoDB
(moto) and in memory."""

from __future__ import annotations

import threading

import pytest

from chalicelib.accounts import rate_limits
from chalicelib.accounts.store import Grant
from chalicelib.aws import clients as aws
from chalicelib.oauth.apps import App
from chalicelib.oauth.codes import AuthorizationCode, SignInCode
from chalicelib.oauth.store import OAuthStore
from chalicelib.oauth.tokens import AccessToken
from devtools.fakes.oauth import InMemoryOAuthStore
from tests.conftest import TABLE

APP = App("client-1", "f" * 64, "App", None, ("https://app.example/cb",), frozenset({"read", "write"}), "2026-01-01")
CODE = AuthorizationCode("c" * 64, "client-1", "https://app.example/cb", frozenset({"read"}), "alice", None, 2**31)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request):
    if request.param == "memory":
        return InMemoryOAuthStore()
    request.getfixturevalue("moto")
    return OAuthStore(aws.new_client("dynamodb"), TABLE)


def test_an_app_reads_back_as_registered(store):
    store.put_app(APP)
    assert store.app("client-1") == APP and store.app("client-2") is None


def test_a_code_is_taken_once(store):
    store.put_code(CODE)
    assert store.take_code(CODE.code_sha256) == CODE
    assert store.take_code(CODE.code_sha256) is None


def test_of_racing_redemptions_exactly_one_gets_the_code(store):
    store.put_code(CODE)
    taken, barrier = [], threading.Barrier(8)

    def redeem():
        barrier.wait()
        taken.append(store.take_code(CODE.code_sha256))

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [code for code in taken if code is not None] == [CODE] and len(taken) == 8


def test_tokens_are_many_per_user_and_revoked_one_by_one_by_their_app(store):
    first = AccessToken("1" * 64, "client-1", frozenset({"read"}), 100, "alice")
    second = AccessToken("2" * 64, "client-2", frozenset({"read", "write"}), 101, "alice")
    app_only = AccessToken("3" * 64, "client-1", frozenset({"read"}), 102, None)
    for token in (first, second, app_only):
        store.put_token(token)

    assert [store.token(token.token_sha256) for token in (first, second, app_only)] == [first, second, app_only]
    assert store.revoke_token(first.token_sha256, "client-2") is False
    assert store.revoke_token(first.token_sha256, "client-1") is True
    assert store.revoke_token(app_only.token_sha256, "client-1") is True
    assert (store.token(first.token_sha256), store.token(app_only.token_sha256)) == (None, None)
    assert store.token(second.token_sha256) == second


def test_a_user_token_is_a_grant_for_every_route(moto):
    from chalicelib import wiring

    store = OAuthStore(aws.new_client("dynamodb"), TABLE)
    store.put_token(AccessToken("4" * 64, "c", frozenset({"read"}), 1, "bob"))
    store.put_token(AccessToken("3" * 64, "c", frozenset({"read"}), 1, None))  # an app's own: no user route
    assert wiring.user_store().grant_for("4" * 64) == Grant("bob", frozenset({"read"}), "oauth")
    assert wiring.user_store().grant_for("3" * 64) is None


def test_a_sign_in_code_is_taken_once_and_only_by_its_user(store):
    code = SignInCode("s" * 64, "alice", 2**31)
    store.put_sign_in_code(code)
    assert store.take_sign_in_code(code.code_sha256, "mallory") is None
    assert store.take_sign_in_code(code.code_sha256, "alice") == code
    assert store.take_sign_in_code(code.code_sha256, "alice") is None


def test_failures_are_counted_per_key_up_to_the_limit(store):
    limit = rate_limits.RateLimit("failures", 3, "too_many_sign_ins", "failed sign-ins", 900)
    alice = rate_limits.Charge(limit, "signin#user#alice", 1_000_000)
    address = rate_limits.Charge(limit, "signin#addr#a", 1_000_000)
    later = rate_limits.Charge(limit, "signin#user#alice", 1_000_000 + 900)
    for _ in range(5):
        store.count_failure([alice])
    store.count_failure([address])
    assert store.failures([alice, address, later]) == [3, 1, 0]
