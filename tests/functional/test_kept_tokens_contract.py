"""One contract, two implementations: retiring kept tokens over some marker
shards (`upstream.tokens.KeptTokens.retire_shards`), on DynamoDB (moto) and
in memory (`devtools.fakes.kept_tokens`): which tokens go, which shards are
left unfinished."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.accounts import kept_tokens as kept
from chalicelib.aws import dynamo
from chalicelib.core.clock import iso_at
from chalicelib.upstream.tokens import KeptTokens
from devtools.fakes.kept_tokens import InMemoryKeptTokens
from tests.conftest import TABLE

SHARDS = 8
AT = 1_800_000_000.0


class Cipher:
    def forget(self, username: str) -> None:
        return None


class DynamoKept:
    """`KeptTokens` with the writes a post makes when it keeps a token."""

    def __init__(self) -> None:
        self.tokens = KeptTokens(wiring.dynamodb(), Cipher(), TABLE, SHARDS)

    def keep(self, username: str, sha256: str, changed_at: str) -> None:
        sealed = kept.SealedToken(sha256, "Y2lwaGVy")
        items = [kept.keep_update(TABLE, username, sealed), kept.marker_put(TABLE, SHARDS, username, sealed)]
        dynamo.transact(wiring.dynamodb(), items, "keep primary token")
        wiring.dynamodb().update_item(
            TableName=TABLE,
            Key=kept.user_key(username),
            UpdateExpression="SET feed_changed_at = :at",
            ExpressionAttributeValues={":at": {"S": changed_at}},
        )

    def retire_shards(self, shards, quiet_before, keep_going=lambda: True):
        return self.tokens.retire_shards(shards, quiet_before, keep_going)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request):
    if request.param == "memory":
        return InMemoryKeptTokens(SHARDS)
    request.getfixturevalue("moto")
    return DynamoKept()


def users_in(shard: int, count: int) -> list[str]:
    names = (f"user{n}" for n in range(10_000))
    return [name for name in names if kept.marker_shard_of(name, SHARDS) == shard][:count]


def test_quiet_authors_go_and_a_shard_with_one_left_is_unfinished(store):
    quiet, busy = users_in(3, 2)
    (alone,) = users_in(5, 1)
    store.keep(quiet, "sha-q", iso_at(AT))
    store.keep(busy, "sha-b", iso_at(AT + 10))
    store.keep(alone, "sha-a", iso_at(AT))

    done = store.retire_shards([3, 5, 6], iso_at(AT + 5))

    assert (done.retired, done.unfinished) == (2, frozenset({3}))
    again = store.retire_shards([3], iso_at(AT + 11))
    assert (again.retired, again.unfinished) == (1, frozenset())


def test_shards_not_asked_for_are_left_alone(store):
    (alone,) = users_in(5, 1)
    store.keep(alone, "sha-a", iso_at(AT))
    assert store.retire_shards([3, 4], iso_at(AT + 5)).retired == 0
    assert store.retire_shards([5], iso_at(AT + 5)).retired == 1


def test_out_of_time_every_shard_not_done_is_unfinished(store):
    (alone,) = users_in(5, 1)
    store.keep(alone, "sha-a", iso_at(AT))
    done = store.retire_shards([5, 6, 7], iso_at(AT + 5), keep_going=lambda: False)
    assert (done.retired, done.unfinished) == (0, frozenset({5, 6, 7}))
