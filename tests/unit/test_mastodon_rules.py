"""Pure Mastodon rules: id windows, content rendering, CSV import, settings."""

from __future__ import annotations

import pytest

from chalicelib.config import SettingsError, UpstreamSettings
from chalicelib.core import ids
from chalicelib.errors import ValidationFailed
from chalicelib.mastodon import ids as mastodon_ids
from chalicelib.mastodon.entities import content_html
from chalicelib.mastodon.follows import parse_following_csv
from chalicelib.mastodon.forms import parse_status_form


def test_a_mastodon_id_round_trips_to_the_range_that_holds_its_ulid():
    ulid = ids.UlidFactory(clock=lambda: 1_700_000_000.25).new()
    number = int(mastodon_ids.mastodon_id(ulid))

    assert mastodon_ids.lowest_ulid(number) <= ulid <= mastodon_ids.highest_ulid(number)
    assert number >> 16 == 1_700_000_000_250


def test_windows_are_exclusive_of_the_ids_given():
    window = mastodon_ids.window_from_params({"max_id": "100", "since_id": "7", "limit": "5"})

    assert window.highest == mastodon_ids.highest_ulid(99)
    assert window.lowest == mastodon_ids.lowest_ulid(8)
    assert (window.limit, window.oldest_first) == (5, False)
    assert mastodon_ids.window_from_params({"min_id": "7"}).oldest_first
    with pytest.raises(ValidationFailed):
        mastodon_ids.window_from_params({"max_id": str(2**63)})


def test_content_is_escaped_into_paragraphs_and_line_breaks():
    assert content_html("a<b>\nc\n\n\nd") == "<p>a&lt;b&gt;<br />c</p><p>d</p>"


def test_the_spoiler_counts_towards_the_limit():
    with pytest.raises(ValidationFailed):
        parse_status_form({"status": ["x" * 8], "spoiler_text": ["abc"]}, None, max_chars=10)
    assert parse_status_form({"status": ["x" * 7], "spoiler_text": ["abc"]}, None, max_chars=10).spoiler_text == "abc"


def test_following_csv_rows_keep_their_options_and_flag_remote_accounts():
    rows = parse_following_csv(
        'Account address,Show boosts,Notify on new posts,Languages\nBob@home.example,false,true,"en,fr"\n'
        "eve@elsewhere.example,true,false,\n\n",
        "home.example",
    )

    assert rows[0].username == "bob" and rows[0].follow_options["languages"] == ("en", "fr")
    assert rows[0].follow_options["show_reblogs"] is False and rows[0].follow_options["notify"] is True
    assert rows[1].username is None and "elsewhere.example" in rows[1].problem
    with pytest.raises(ValidationFailed):
        parse_following_csv("not,the,header\n", "")


def test_a_mastodon_upstream_needs_no_shared_token_but_a_known_kind():
    settings = UpstreamSettings.from_env({"UPSTREAM_URL": "https://m.example", "UPSTREAM_KIND": "mastodon"})

    assert settings.kind == "mastodon" and settings.enabled
    with pytest.raises(SettingsError):
        UpstreamSettings.from_env({"UPSTREAM_URL": "https://m.example", "UPSTREAM_KIND": "pleroma"})
    with pytest.raises(SettingsError):
        UpstreamSettings.from_env({"UPSTREAM_URL": "https://m.example"})
