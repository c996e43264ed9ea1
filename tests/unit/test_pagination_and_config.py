from __future__ import annotations

import hashlib

import pytest

from chalicelib.config import Settings, SettingsError
from chalicelib.core.pagination import decode_cursor, encode_cursor, parse_limit
from chalicelib.errors import BadRequest

POST_ID = "01KAQZ7X3M5V0000000000ABCD"


def test_cursor_round_trips_and_is_opaque():
    cursor = encode_cursor(POST_ID)
    assert POST_ID not in cursor
    assert decode_cursor(cursor) == POST_ID
    assert decode_cursor(None) is None


@pytest.mark.parametrize("cursor", ["", "!!!", "djE6bm90LWFuLWlk", POST_ID, "v1:" + POST_ID, "\u00e9"])
def test_foreign_cursors_are_a_bad_request(cursor):
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "invalid_cursor"


@pytest.mark.parametrize(("raw", "expected"), [(None, 20), ("1", 1), ("100", 100), ("37", 37)])
def test_limit_within_bounds(raw, expected):
    assert parse_limit(raw, 20, 100) == expected


@pytest.mark.parametrize("raw", ["0", "101", "-1", "abc", "", "1.5", " 5"])
def test_limit_out_of_bounds_is_a_bad_request(raw):
    with pytest.raises(BadRequest):
        parse_limit(raw, 20, 100)


def test_settings_read_the_environment_and_hash_the_admin_token():
    settings = Settings.from_env({"MAX_POST_CHARS": "280", "ADMIN_TOKEN": "s3cret", "WRITE_SHARDS": "8"})
    assert settings.max_post_chars == 280
    assert settings.write_shards == 8
    assert "s3cret" not in repr(settings)
    assert settings.admin_token_sha256 == hashlib.sha256(b"s3cret").hexdigest()


def test_a_deployed_stage_can_give_only_the_admin_token_hash():
    assert Settings.from_env({"ADMIN_TOKEN_SHA256": "AB" * 32}).admin_token_sha256 == "ab" * 32


def test_no_admin_token_leaves_admin_disabled():
    assert Settings.from_env({}).admin_token_sha256 == ""


def test_the_primarys_public_url_is_an_http_url_or_unset():
    assert Settings.from_env({}).primary_public_url is None
    url = "https://social.example/home?from=lifeboat"
    assert Settings.from_env({"PRIMARY_PUBLIC_URL": f" {url} "}).primary_public_url == url


@pytest.mark.parametrize(
    "env",
    [
        {"MAX_POST_CHARS": "many"},
        {"MAX_POST_CHARS": "0"},
        {"WRITE_SHARDS": "-2"},
        {"PRIMARY_PUBLIC_URL": "javascript:alert(1)"},
        {"PRIMARY_PUBLIC_URL": "social.example"},
        {"PRIMARY_PUBLIC_URL": "https://"},
    ],
)
def test_unusable_settings_fail_loudly(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)
