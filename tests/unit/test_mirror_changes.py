"""The mirror's change documents: the four kinds parsed exactly, anything
else a MalformedChange with a reason, whatever the primary sends."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chalicelib.mirror.changes import (
    MAX_TEXT_CHARS,
    UNTOLD,
    AccountChange,
    CredentialChange,
    FollowChange,
    MalformedChange,
    PostChange,
    parse_change,
)
from tests.properties import any_text, bounded, json_values, texts

DIGEST = hashlib.sha256(b"primary-token").hexdigest()
BCRYPT = "$2b$12$" + "a" * 53
ACCOUNT = {
    "type": "account",
    "username": "alice",
    "display_name": "Alice",
    "created_at": "2026-01-02T03:04:05.678Z",
    "suspended": False,
    "password_bcrypt": BCRYPT,
}
CREDENTIAL = {
    "type": "credential",
    "username": "alice",
    "token_sha256": DIGEST,
    "scopes": "read write",
    "revoked": False,
}
FOLLOW = {"type": "follow", "follower": "alice", "followee": "bob", "active": True}
POST = {
    "type": "post",
    "id": "109876543210",
    "author": "bob",
    "text": "hello",
    "created_at": "2026-01-02T03:04:05+01:00",
    "in_reply_to": None,
    "deleted": False,
}
VALID = [ACCOUNT, CREDENTIAL, FOLLOW, POST]


def test_each_kind_parses_to_its_dataclass():
    assert parse_change(ACCOUNT) == AccountChange("alice", "Alice", "2026-01-02T03:04:05.678Z", False, BCRYPT)
    assert parse_change(CREDENTIAL) == CredentialChange("alice", DIGEST, frozenset({"read", "write"}), False)
    assert parse_change(FOLLOW) == FollowChange("alice", "bob", True)
    # Times become our own UTC text, whatever offset the primary wrote.
    assert parse_change(POST) == PostChange("109876543210", "bob", "hello", "2026-01-02T02:04:05.000Z", None, False)


def test_optional_fields_default():
    account = parse_change({k: v for k, v in ACCOUNT.items() if k != "display_name"})
    assert account.display_name == ""


def test_an_absent_password_hash_or_suspension_is_untold_and_null_is_no_password():
    # Untold: the stored value stays (a Mastodon API account knows no hash).
    untold = parse_change({k: v for k, v in ACCOUNT.items() if k not in {"suspended", "password_bcrypt"}})
    assert (untold.suspended, untold.password_bcrypt) == (UNTOLD, UNTOLD)
    assert parse_change({**ACCOUNT, "password_bcrypt": None}).password_bcrypt is None
    assert "<untold>" in repr(untold) and BCRYPT not in repr(untold)


def test_a_deleted_post_needs_no_text():
    assert parse_change({**POST, "text": "", "deleted": True}).deleted


def test_sub_scopes_grant_nothing_whole():
    change = parse_change({**CREDENTIAL, "scopes": "read:statuses write"})
    assert change.scopes == frozenset({"write"})


def test_the_password_hash_stays_out_of_repr():
    assert BCRYPT not in repr(parse_change(ACCOUNT))
    assert DIGEST not in repr(parse_change(CREDENTIAL))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "JSON object"),
        ({"type": "tweet"}, "unknown change type"),
        ({**ACCOUNT, "extra": 1}, "unknown field"),
        ({"type": "follow", "follower": "alice"}, "lacks active, followee"),
        ({**ACCOUNT, "username": "Alice"}, "username"),
        ({**ACCOUNT, "suspended": 0}, "suspended"),
        ({**ACCOUNT, "created_at": "yesterday"}, "created_at"),
        ({**ACCOUNT, "created_at": "1969-12-31T23:59:59Z"}, "out of range"),
        ({**ACCOUNT, "password_bcrypt": "plaintext"}, "bcrypt"),
        ({**CREDENTIAL, "token_sha256": DIGEST.upper()}, "hex"),
        ({**CREDENTIAL, "token_sha256": DIGEST[:-1] + "g"}, "hex"),
        ({**CREDENTIAL, "scopes": "read  write"}, "scope"),
        ({**FOLLOW, "followee": "alice"}, "itself"),
        ({**POST, "text": "   "}, "empty"),
        ({**POST, "text": "x" * (MAX_TEXT_CHARS + 1)}, "longer"),
        ({**POST, "text": "bad \ud800 surrogate"}, "forbidden"),
        ({**POST, "id": "has space"}, "printable"),
        ({**POST, "in_reply_to": 7}, "in_reply_to"),
    ],
)
def test_malformed_changes_say_why(document, reason):
    with pytest.raises(MalformedChange, match=reason):
        parse_change(document)


# Each valid document with one field replaced by anything JSON can hold.
mutated = st.sampled_from(VALID).flatmap(
    lambda doc: st.builds(
        lambda name, value: {**doc, name: value},
        st.sampled_from(sorted(doc)),
        st.one_of(json_values, texts(max_size=300), st.text(min_size=4000, max_size=6000), st.just("\ud800")),
    )
)


@bounded(400)
@given(st.one_of(json_values, mutated, st.dictionaries(any_text, json_values, max_size=8)))
@example({**POST, "created_at": "9999-12-31T23:59:59.999999+00:00"})
@example({**POST, "created_at": "0001-01-01T00:00:00-23:59"})
@example({**CREDENTIAL, "token_sha256": "\ud800" * 64})
def test_parse_change_raises_nothing_but_malformed_change(document):
    try:
        change = parse_change(document)
    except MalformedChange as malformed:
        assert malformed.reason
    else:
        assert isinstance(change, AccountChange | CredentialChange | FollowChange | PostChange)
