"""One contract, two implementations: the DynamoDB UserStore (on moto) and
the in-memory fake, so a test that uses the fake tests what production does."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.accounts.store import User
from chalicelib.accounts.tokens import new_token, token_hash
from chalicelib.errors import Conflict
from devtools.fakes.accounts import InMemoryUserStore

CREATED = "2026-11-23T00:00:00.000Z"
ROTATED = "2026-11-24T00:00:00.000Z"


@pytest.fixture(params=["dynamodb", "memory"])
def users(request):
    if request.param == "memory":
        return InMemoryUserStore()
    request.getfixturevalue("moto")
    return wiring.user_store()


def new_user(users, username="alice") -> User:
    hashed = token_hash(new_token())
    users.create(User(username, CREATED, hashed, CREATED))
    return users.get(username)


def test_a_created_user_reads_back_with_a_live_token(users):
    alice = new_user(users)

    assert alice == User("alice", CREATED, alice.token_hash, CREATED, posts_count=0, last_post_id=None)
    assert alice.to_public()["token_active"] is True
    assert users.username_for(alice.token_hash) == "alice"


def test_several_users_read_at_once_leave_out_unknown_names(users):
    alice, bob = new_user(users), new_user(users, "bob")
    assert users.get_many(["bob", "nobody", "alice", "bob"]) == {"alice": alice, "bob": bob}
    assert users.get_many([]) == {}


def test_an_unknown_user_or_token_is_none(users):
    assert users.get("nobody") is None
    assert users.username_for(token_hash("lb_never-issued")) is None


def test_a_username_is_taken_once_and_the_first_user_stays(users):
    alice = new_user(users)

    with pytest.raises(Conflict) as caught:
        users.create(User("alice", ROTATED, token_hash(new_token()), ROTATED))

    assert caught.value.code == "username_taken"
    assert users.get("alice") == alice


def test_rotating_a_token_retires_the_old_one(users):
    alice = new_user(users)
    rotated = token_hash(new_token())

    users.replace_token(alice, rotated, ROTATED)

    assert users.username_for(alice.token_hash) is None
    assert users.username_for(rotated) == "alice"
    assert (users.get("alice").token_hash, users.get("alice").token_issued_at) == (rotated, ROTATED)


def test_revoking_leaves_the_user_without_any_token(users):
    alice = new_user(users)

    users.replace_token(alice, None, None)

    stored = users.get("alice")
    assert (stored.token_hash, stored.token_issued_at) == (None, None)
    assert stored.to_public()["token_active"] is False
    assert users.username_for(alice.token_hash) is None


def test_a_token_replaced_from_a_stale_read_is_a_conflict(users):
    # Given two admins who read alice with the same token
    stale = new_user(users)
    # When the first rotates it
    first = token_hash(new_token())
    users.replace_token(stale, first, ROTATED)
    # Then the second, still holding the old read, cannot leave a second live token
    second = token_hash(new_token())
    with pytest.raises(Conflict) as caught:
        users.replace_token(stale, second, ROTATED)

    assert caught.value.code == "token_changed"
    assert users.username_for(first) == "alice"
    assert users.username_for(second) is None


def test_a_revoked_user_may_be_given_a_token_again(users):
    alice = new_user(users)
    users.replace_token(alice, None, None)
    fresh = token_hash(new_token())

    users.replace_token(users.get("alice"), fresh, ROTATED)

    assert users.username_for(fresh) == "alice"
