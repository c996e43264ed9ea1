"""Validation of a user's token for a Mastodon primary (pure; the KMS and
DynamoDB adapter meets moto in tests/functional and tests/e2e)."""

from __future__ import annotations

import pytest

from chalicelib.errors import ValidationFailed
from chalicelib.upstream import tokens as upstream_tokens


@pytest.mark.parametrize("token", ["tok\x01en", "\x7ftoken", "tok\x00", "two words", "caf\u00e9", " ", "x" * 4097])
def test_an_upstream_token_must_be_one_run_of_printable_ascii(token):
    # A control character would later break the Authorization header of every replayed post.
    with pytest.raises(ValidationFailed):
        upstream_tokens.validate_token({"token": token})


def test_an_upstream_token_loses_the_whitespace_around_it():
    assert upstream_tokens.validate_token({"token": "\t abc~!\n"}) == "abc~!"


@pytest.mark.parametrize("body", [{"token": "x", "extra": 1}, {}, ["x"], {"token": 7}])
def test_an_upstream_token_body_is_exactly_one_token_field(body):
    with pytest.raises(ValidationFailed):
        upstream_tokens.validate_token(body)
