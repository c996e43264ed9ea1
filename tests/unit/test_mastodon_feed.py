"""The pure half of the Mastodon change feed: entities to change documents,
Mastodon's HTML back to text, and the cursor's strict round trip."""

from __future__ import annotations

import base64
import html
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.config import MastodonFeedSettings, SettingsError
from chalicelib.upstream.mastodon_feed import (
    ACTIVE,
    CRAWL,
    SUSPENDED,
    TAIL,
    Crawl,
    FeedCursor,
    Follower,
    account_change,
    decode_cursor,
    encode_cursor,
    follow_change,
    html_to_text,
    link_param,
    mastodon_id_at,
    post_change,
)


def simple_format(text: str) -> str:
    """How Mastodon renders a plain-text status (Rails' simple_format)."""
    return "".join(f"<p>{html.escape(part).replace(chr(10), '<br />')}</p>" for part in text.split("\n\n"))


# What an author can write that simple_format keeps: no paragraph that
# starts or ends with a newline (three newlines are one paragraph break).
paragraph = st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), min_size=1).map(str.strip)
texts = st.lists(st.lists(paragraph.filter(bool), min_size=1, max_size=3).map("\n".join), min_size=1, max_size=3)


@given(texts.map("\n\n".join))
def test_mastodon_html_turns_back_into_the_text_its_author_wrote(text):
    assert html_to_text(simple_format(text)) == text


@given(st.text(st.characters(exclude_characters="<>&")))
def test_text_without_markup_passes_unchanged(text):
    assert html_to_text(text) == text


def test_mentions_links_and_hashtags_keep_their_visible_text():
    content = (
        '<p><span class="h-card"><a href="https://x.example/@bob" class="u-url mention">@<span>bob</span></a></span>'
        ' see <a href="https://x.example/very/long"><span class="invisible">https://</span>'
        '<span class="ellipsis">x.example/very</span><span class="invisible">/long</span></a></p>'
        '<p class="x"><a href="https://x.example/tags/t" class="mention hashtag">#<span>t</span></a> &lt;b&gt;</p>'
    )
    assert html_to_text(content) == "@bob see https://x.example/very/long\n\n#t <b>"


def test_an_admin_account_becomes_an_account_change_that_leaves_the_password_hash_untold():
    entity = {
        "id": "5",
        "username": "alice",
        "domain": None,
        "created_at": "2024-01-01T00:00:00.000Z",
        "suspended": True,
        "account": {"display_name": "Alice"},
    }
    assert account_change(entity) == {
        "type": "account",
        "username": "alice",
        "display_name": "Alice",
        "created_at": "2024-01-01T00:00:00.000Z",
        "suspended": True,
    }
    assert account_change({**entity, "domain": "remote.example"}) is None
    assert account_change({**entity, "username": "a@b"}) is None
    assert account_change({**entity, "account": None}) is None
    assert account_change("alice") is None


def test_only_a_public_original_local_status_becomes_a_post_change():
    status = {
        "id": "9",
        "content": "<p>hi</p>",
        "created_at": "2024-01-01T00:00:00.000Z",
        "visibility": "public",
        "reblog": None,
        "in_reply_to_id": "8",
        "account": {"acct": "alice"},
    }
    assert post_change(status) == {
        "type": "post",
        "id": "9",
        "author": "alice",
        "text": "hi",
        "created_at": "2024-01-01T00:00:00.000Z",
        "in_reply_to": "8",
        "deleted": False,
    }
    for other in (
        {"visibility": "unlisted"},
        {"visibility": "direct"},
        {"reblog": {"id": "1"}},
        {"account": {"acct": "bob@remote.example"}},
        {"id": 9},
        {"in_reply_to_id": 8},
        {"content": None},
    ):
        assert post_change({**status, **other}) is None


def test_only_local_followees_become_follow_changes():
    assert follow_change("alice", {"acct": "bob"}) == {
        "type": "follow",
        "follower": "alice",
        "followee": "bob",
        "active": True,
    }
    assert follow_change("alice", {"acct": "bob@remote.example"}) is None
    assert follow_change("alice", None) is None


def test_the_paging_position_comes_from_the_link_header():
    link = (
        '<https://m.example/api/v1/x?limit=2&max_id=41>; rel="next", <https://m.example/api/v1/x?min_id=44>; rel="prev"'
    )
    assert link_param(link, "next", "max_id") == "41"
    assert link_param(link, "prev", "min_id") == "44"
    assert link_param(link, "next", "min_id") is None
    assert link_param(None, "next", "max_id") is None


def test_a_moment_becomes_the_smallest_mastodon_id_of_that_millisecond():
    assert mastodon_id_at(1.0) == str(1000 << 16)
    assert mastodon_id_at(-5) == "0"


ids = st.integers(min_value=0, max_value=2**63).map(str)
usernames = st.from_regex(r"[A-Za-z0-9_]{1,30}", fullmatch=True)
followers = st.builds(Follower, ids, usernames, st.none() | ids)
crawls = st.one_of(
    st.builds(Crawl, st.just(ACTIVE), st.none() | ids, st.none() | followers),
    st.builds(Crawl, st.just(SUSPENDED), st.none() | ids, st.none()),
)
cursors = st.builds(
    FeedCursor,
    posts_after=ids,
    accounts_after=ids,
    check_accounts=st.booleans(),
    turn=st.sampled_from([TAIL, CRAWL]),
    crawled_at=st.none() | st.floats(min_value=0, max_value=4e9),
    crawl=st.none() | crawls,
)


@given(cursors)
def test_a_cursor_comes_back_as_it_went(cursor):
    encoded = encode_cursor(cursor)
    assert encoded.isascii() and "=" not in encoded
    assert decode_cursor(encoded) == cursor


@given(cursors, st.data())
def test_a_damaged_cursor_is_none_or_still_a_cursor_and_never_raises(cursor, data):
    encoded = encode_cursor(cursor)
    at = data.draw(st.integers(0, len(encoded) - 1))
    damaged = encoded[:at] + data.draw(st.characters(codec="ascii")) + encoded[at + 1 :]
    decoded = decode_cursor(damaged)
    assert decoded is None or decode_cursor(encode_cursor(decoded)) == decoded


@given(st.one_of(st.text(), st.binary().map(lambda raw: raw.decode("latin-1")), st.none(), st.integers()))
def test_decoding_anything_never_raises(text):
    decoded = decode_cursor(text)
    assert decoded is None or decode_cursor(encode_cursor(decoded)) == decoded


def test_a_cursor_with_a_wrong_part_is_refused():
    good = {
        "v": 1,
        "posts_after": "1",
        "accounts_after": "0",
        "check_accounts": True,
        "turn": "tail",
        "crawled_at": None,
        "crawl": None,
    }
    follower = {"id": "3", "username": "alice", "after": None}

    def encoded(document):
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    assert decode_cursor(encoded(good)) == FeedCursor(posts_after="1")
    for wrong in (
        {"v": 2},
        {"posts_after": "-1"},
        {"posts_after": 1},
        {"turn": "both"},
        {"check_accounts": 1},
        {"crawled_at": True},
        {"crawled_at": -1},
        {"extra": 1},
        {"crawl": {"status": "suspended", "before": None, "follower": follower}},
        {"crawl": {"status": "active", "before": None, "follower": {**follower, "username": "a b"}}},
        {"crawl": {"status": "active", "before": "x", "follower": None}},
    ):
        assert decode_cursor(encoded({**good, **wrong})) is None, wrong
    assert decode_cursor(encoded({key: value for key, value in good.items() if key != "turn"})) is None
    assert decode_cursor(encoded(good)[:-2] + "!!") is None


def test_the_feed_settings_have_their_defaults_and_refuse_a_budget_below_two():
    assert MastodonFeedSettings.from_env({}) == MastodonFeedSettings(3600, 20, 7, 10)
    assert MastodonFeedSettings.from_env({"MIRROR_CRAWL_EVERY_SECONDS": "60"}).crawl_every_seconds == 60
    with pytest.raises(SettingsError):
        MastodonFeedSettings.from_env({"MIRROR_CRAWL_REQUESTS_PER_FETCH": "1"})
