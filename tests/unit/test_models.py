"""Validation rules of the write path, without AWS or HTTP."""

from __future__ import annotations

import pytest

from chalicelib.core.models import NewPost, normalise_text, parse_new_post, validate_username
from chalicelib.errors import BadRequest, ValidationFailed

LIMIT = 500


@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n"])
def test_empty_or_blank_text_is_rejected(text):
    with pytest.raises(ValidationFailed) as caught:
        normalise_text(text, LIMIT)
    assert caught.value.code == "empty_text"


def test_line_endings_are_normalised_to_newlines():
    assert normalise_text("a\r\nb\rc\nd", LIMIT) == "a\nb\nc\nd"


def test_length_is_counted_in_code_points_after_normalising():
    emoji = "\U0001f6df"  # a ring buoy: one code point, two UTF-16 units, four UTF-8 bytes
    assert normalise_text(emoji * LIMIT, LIMIT) == emoji * LIMIT
    with pytest.raises(ValidationFailed) as caught:
        normalise_text(emoji * (LIMIT + 1), LIMIT)
    assert caught.value.code == "text_too_long"
    # "\r\n" counts as one character once normalised.
    assert len(normalise_text("x\r\n" * 250, LIMIT)) == 500


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x08", "\x0b", "\x0c", "\x1f", "\x7f", "\x80", "\x85", "\x9f", "\ud800", "\udfff", "\ufffe", "\uffff"],
)
def test_characters_that_would_break_a_feed_are_rejected(char):
    with pytest.raises(ValidationFailed) as caught:
        normalise_text(f"before{char}after", LIMIT)
    assert caught.value.code == "forbidden_character"


@pytest.mark.parametrize(
    "text", ["tab\there", "<b>&amp;]]>\"'", "\u202eRTL\u202c", "\U0001f600" * 3, "\ufffd", "a\u00a0b"]
)
def test_everything_else_is_kept_as_written(text):
    assert normalise_text(text, LIMIT) == text


@pytest.mark.parametrize("text", [None, 5, ["a"], {"a": 1}, True])
def test_text_must_be_a_string(text):
    with pytest.raises(ValidationFailed):
        normalise_text(text, LIMIT)


def test_unknown_fields_are_refused_not_silently_dropped():
    with pytest.raises(ValidationFailed) as caught:
        parse_new_post({"text": "hi", "media_ids": [1]}, None, LIMIT)
    assert caught.value.code == "unknown_field"


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_the_body_must_be_an_object(body):
    with pytest.raises(BadRequest):
        parse_new_post(body, None, LIMIT)


@pytest.mark.parametrize("parent", [5, "not-an-id", "", ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]])
def test_in_reply_to_must_look_like_a_post_id(parent):
    with pytest.raises(ValidationFailed) as caught:
        parse_new_post({"text": "hi", "in_reply_to": parent}, None, LIMIT)
    assert caught.value.code == "unknown_parent"


@pytest.mark.parametrize("key", ["", " ", "has space", "x" * 256, "caf\u00e9", "tab\t"])
def test_idempotency_keys_must_be_printable_ascii_up_to_255(key):
    with pytest.raises(BadRequest):
        parse_new_post({"text": "hi"}, key, LIMIT)


def test_fingerprint_differs_when_text_or_parent_differs():
    base = NewPost("hello", None, "k")
    assert base.fingerprint == NewPost("hello", None, "other-key").fingerprint
    assert base.fingerprint != NewPost("hello!", None, "k").fingerprint
    assert base.fingerprint != NewPost("hello", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "k").fingerprint


@pytest.mark.parametrize("name", ["a", "alice_01", "x" * 30, "0"])
def test_valid_usernames(name):
    assert validate_username(name) == name


# "alice\n": Python's `$` also matches before a final newline.
@pytest.mark.parametrize("name", ["", "Alice", "x" * 31, "al-ice", "al ice", "ålice", None, 7, "alice\n"])
def test_invalid_usernames(name):
    with pytest.raises(ValidationFailed):
        validate_username(name)
