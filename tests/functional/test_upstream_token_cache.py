"""Per-user upstream tokens seen from two containers (two UpstreamTokens
with their own clients) sharing one table: a replaced or deleted token
takes effect in the other container at once, not when its cache expires."""

from __future__ import annotations

import pytest

from chalicelib.aws import clients as aws
from chalicelib.upstream import tokens as upstream_tokens
from chalicelib.upstream.tokens import UpstreamTokens
from tests.conftest import TABLE

KEY_ALIAS = "alias/lifeboat-upstream-tokens"


class Container:
    """One Lambda container's UpstreamTokens, counting its KMS Decrypt calls."""

    def __init__(self, key_id: str) -> None:
        kms = aws.new_client("kms")
        self.decrypts = 0
        kms.meta.events.register("before-call.kms.Decrypt", self._count)
        self.tokens = UpstreamTokens(aws.new_client("dynamodb"), kms, TABLE, key_id)

    def _count(self, **_) -> None:
        self.decrypts += 1


@pytest.fixture
def containers(moto):
    key_id = upstream_tokens.ensure_key(aws.new_client("kms"), KEY_ALIAS)
    return Container(key_id), Container(key_id)


def test_a_replaced_token_is_used_at_once_by_another_container(containers):
    api, maintenance = containers
    api.tokens.put("alice", "first-token")
    assert maintenance.tokens.get("alice") == "first-token"

    api.tokens.put("alice", "second-token")

    assert maintenance.tokens.get("alice") == "second-token"


def test_a_deleted_token_is_gone_at_once_in_another_container(containers):
    api, maintenance = containers
    api.tokens.put("alice", "first-token")
    assert maintenance.tokens.get("alice") == "first-token"

    api.tokens.delete("alice")

    assert maintenance.tokens.get("alice") is None


def test_an_unchanged_token_is_decrypted_once_per_container(containers):
    api, maintenance = containers
    api.tokens.put("alice", "first-token")

    assert [maintenance.tokens.get("alice") for _ in range(5)] == ["first-token"] * 5
    assert maintenance.decrypts == 1
    api.tokens.put("alice", "second-token")
    assert [maintenance.tokens.get("alice") for _ in range(3)] == ["second-token"] * 3
    assert maintenance.decrypts == 2
