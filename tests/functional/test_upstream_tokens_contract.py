"""One contract, two implementations: the per-user tokens for a Mastodon
primary, kept by the DynamoDB + KMS `UpstreamTokens` (on moto) and by the
in-memory fake."""

from __future__ import annotations

import pytest

from chalicelib.aws import clients as aws
from chalicelib.upstream.tokens import UpstreamTokens, ensure_key
from devtools.fakes.upstream import InMemoryUpstreamTokens
from tests.conftest import TABLE

KEY_ALIAS = "alias/lifeboat-upstream-tokens"


@pytest.fixture(params=["dynamodb", "memory"])
def tokens(request):
    if request.param == "memory":
        return InMemoryUpstreamTokens()
    request.getfixturevalue("moto")
    key_id = ensure_key(aws.new_client("kms"), KEY_ALIAS)
    return UpstreamTokens(aws.new_client("dynamodb"), aws.new_client("kms"), TABLE, key_id)


def test_a_user_without_a_token_has_none(tokens):
    assert tokens.get("alice") is None


def test_a_token_is_kept_per_user_and_replaced_whole(tokens):
    tokens.put("alice", "alice-token-1")
    tokens.put("bob", "bob-token")
    tokens.put("alice", "alice-token-2")
    assert (tokens.get("alice"), tokens.get("bob")) == ("alice-token-2", "bob-token")


def test_a_deleted_token_is_gone_and_deleting_again_is_harmless(tokens):
    tokens.put("alice", "alice-token")
    tokens.delete("alice")
    tokens.delete("alice")
    assert tokens.get("alice") is None
