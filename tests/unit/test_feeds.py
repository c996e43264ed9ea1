"""Feed rendering, checked by independent parsers: feedparser (a real feed
client) for what a reader sees, lxml for well-formedness and the raw text."""

from __future__ import annotations

import calendar
import html
import json
import random
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from chalicelib.core import ids
from chalicelib.core.models import DELETED, PENDING, REPLAYED, Post, normalise_text
from chalicelib.errors import ValidationFailed
from chalicelib.feeds import render as feeds
from chalicelib.feeds.conditional import is_not_modified
from chalicelib.feeds.render import FeedChannel, FeedKind, FeedMarker, Timeline

REPO = Path(__file__).resolve().parents[2]
ATOM_NS = "{http://www.w3.org/2005/Atom}"
DC_NS = "{http://purl.org/dc/elements/1.1/}"
START_MILLIS = ids.millis_from_iso("2026-11-23T20:38:42.179Z")
KINDS = [FeedKind.RSS, FeedKind.ATOM]


def make_post(n: int, text: str = "hello", *, author: str = "alice", **changes) -> Post:
    """Post number n, n seconds after the start; a higher n is newer."""
    millis = START_MILLIS + n * 1000
    post = Post(id=ids.smallest_ulid_at(millis), author=author, text=text, created_at=ids.iso_from_millis(millis))
    return post.with_changes(**changes)


def channel(kind: FeedKind, *, max_items: int = feeds.DEFAULT_FEED_ITEMS) -> FeedChannel:
    return FeedChannel(
        timeline=Timeline("alice"),
        title="alice on Lifeboat",
        description="Posts by alice while the main service is down",
        self_url=f"https://lifeboat.example/feeds/users/alice.{kind.value}",
        alternate_url="https://lifeboat.example/users/alice/posts",
        base_url="https://lifeboat.example/",
        max_items=max_items,
    )


def render(kind: FeedKind, posts: list[Post], **channel_changes) -> bytes:
    return feeds.render_feed(kind, posts, channel(kind, **channel_changes))


def parse(body: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def html_to_text(value: str) -> str:
    """Undo the rendering: <br/> back to newlines, then the escapes."""
    return html.unescape(re.sub(r"<br\s*/?>", "\n", value))


def raw_items(kind: FeedKind, body: bytes) -> list[etree._Element]:
    root = etree.fromstring(body)
    return root.findall("channel/item") if kind is FeedKind.RSS else root.findall(f"{ATOM_NS}entry")


def raw_body_html(kind: FeedKind, item: etree._Element) -> str:
    return item.findtext("description") if kind is FeedKind.RSS else item.findtext(f"{ATOM_NS}content")


def raw_title(kind: FeedKind, item: etree._Element) -> str:
    return item.findtext("title") if kind is FeedKind.RSS else item.findtext(f"{ATOM_NS}title")


def parsed_body_html(kind: FeedKind, entry: feedparser.FeedParserDict) -> str:
    return entry.summary if kind is FeedKind.RSS else entry.content[0].value


def assert_texts_round_trip(kind: FeedKind, posts: list[Post], body: bytes) -> None:
    """Every post's text survives exactly in the XML, and as a reader sees it
    (feedparser trims the outer whitespace of every element, as readers do)."""
    newest = feeds.newest_first(posts, len(posts))
    items = raw_items(kind, body)
    entries = parse(body).entries
    assert len(items) == len(entries) == len(newest)
    for post, item, entry in zip(newest, items, entries, strict=True):
        body_html = raw_body_html(kind, item)
        assert "<" not in body_html.replace("<br/>", ""), "a user's markup reached the HTML"
        assert html_to_text(body_html) == post.text
        assert raw_title(kind, item) == feeds.entry_title(post.text)
        assert html_to_text(parsed_body_html(kind, entry)).strip() == post.text.strip()
        if kind is FeedKind.ATOM:
            assert entry.title == feeds.entry_title(post.text)


# -- order, identity, dates ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_entries_are_newest_first_whatever_order_the_posts_come_in(kind):
    # Given posts handed over oldest first and shuffled
    posts = [make_post(n, f"post number {n}") for n in range(5)]
    shuffled = random.Random(7).sample(posts, len(posts))
    # When the feed is rendered
    entries = parse(render(kind, shuffled)).entries
    # Then the newest comes first, each with its tag URI id and its own link
    assert [entry.id for entry in entries] == [feeds.post_guid(make_post(n).id) for n in range(4, -1, -1)]
    assert [entry.link for entry in entries] == [
        f"https://lifeboat.example/posts/{make_post(n).id}" for n in range(4, -1, -1)
    ]


def test_rss_guid_is_the_tag_uri_and_not_a_permalink():
    item = raw_items(FeedKind.RSS, render(FeedKind.RSS, [make_post(1)]))[0]
    guid = item.find("guid")
    assert guid.text == f"tag:lifeboat,2026:post:{make_post(1).id}"
    assert guid.get("isPermaLink") == "false"
    assert parse(render(FeedKind.RSS, [make_post(1)])).entries[0].guidislink is False


@pytest.mark.parametrize("kind", KINDS)
def test_guid_and_bytes_do_not_change_when_the_post_is_reinserted_upstream(kind):
    pending = make_post(3, state=PENDING)
    replayed = pending.with_changes(state=REPLAYED, upstream_id="109876543210", replayed_at="2026-11-24T01:00:00.000Z")
    assert render(kind, [pending]) == render(kind, [replayed])
    assert parse(render(kind, [replayed])).entries[0].id == f"tag:lifeboat,2026:post:{pending.id}"


@pytest.mark.parametrize("kind", KINDS)
def test_entry_dates_come_from_created_at_and_the_feed_date_from_the_newest_post(kind):
    posts = [make_post(n) for n in (2, 9, 4)]
    parsed = parse(render(kind, posts))
    newest_seconds = (START_MILLIS + 9000) // 1000
    assert calendar.timegm(parsed.feed.updated_parsed) == newest_seconds
    assert [calendar.timegm(entry.published_parsed) for entry in parsed.entries] == [
        (START_MILLIS + n * 1000) // 1000 for n in (9, 4, 2)
    ]


def test_atom_dates_keep_the_milliseconds_of_created_at():
    root = etree.fromstring(render(FeedKind.ATOM, [make_post(0)]))
    assert root.findtext(f"{ATOM_NS}updated") == "2026-11-23T20:38:42.179000+00:00"
    entry = root.find(f"{ATOM_NS}entry")
    assert entry.findtext(f"{ATOM_NS}published") == entry.findtext(f"{ATOM_NS}updated")
    assert entry.findtext(f"{ATOM_NS}published") == "2026-11-23T20:38:42.179000+00:00"


@pytest.mark.parametrize("kind", KINDS)
def test_the_author_is_named_without_an_email(kind):
    body = render(kind, [make_post(1, author="bob_42")])
    assert parse(body).entries[0].author == "bob_42"
    item = raw_items(kind, body)[0]
    if kind is FeedKind.RSS:
        assert item.findtext(f"{DC_NS}creator") == "bob_42"
        assert item.find("author") is None
    else:
        assert item.findtext(f"{ATOM_NS}author/{ATOM_NS}name") == "bob_42"
        assert item.find(f"{DC_NS}creator") is None


@pytest.mark.parametrize("kind", KINDS)
def test_feed_has_a_self_link_with_its_type_and_an_alternate_link(kind):
    links = {link.rel: link for link in parse(render(kind, [make_post(1)])).feed.links}
    assert links["self"].href == f"https://lifeboat.example/feeds/users/alice.{kind.value}"
    assert links["self"].type == kind.media_type
    assert links["alternate"].href == "https://lifeboat.example/users/alice/posts"


def test_feed_ids_name_the_timeline_not_the_deployment():
    root = etree.fromstring(render(FeedKind.ATOM, []))
    assert root.findtext(f"{ATOM_NS}id") == "tag:lifeboat,2026:feed:users/alice"
    public = replace(channel(FeedKind.ATOM), timeline=feeds.PUBLIC_TIMELINE)
    assert etree.fromstring(feeds.render_atom([], public)).findtext(f"{ATOM_NS}id") == "tag:lifeboat,2026:feed:public"


# -- how many, and which ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_default_feed_holds_the_newest_fifty_posts(kind):
    posts = [make_post(n) for n in range(60)]
    entries = parse(render(kind, posts)).entries
    assert feeds.DEFAULT_FEED_ITEMS == 50
    assert [entry.id for entry in entries] == [feeds.post_guid(make_post(n).id) for n in range(59, 9, -1)]


@pytest.mark.parametrize("kind", KINDS)
def test_max_items_keeps_only_the_newest(kind):
    posts = [make_post(n) for n in range(10)]
    entries = parse(render(kind, posts, max_items=3)).entries
    assert [entry.id for entry in entries] == [feeds.post_guid(make_post(n).id) for n in (9, 8, 7)]


@pytest.mark.parametrize("kind", KINDS)
def test_deleted_posts_never_reach_a_feed(kind):
    posts = [make_post(1, "kept"), make_post(2, "secret second thoughts", state=DELETED)]
    body = render(kind, posts)
    assert [entry.id for entry in parse(body).entries] == [feeds.post_guid(make_post(1).id)]
    assert b"secret" not in body


def test_channel_refuses_a_feed_with_no_room_for_posts():
    with pytest.raises(ValueError, match="max_items"):
        channel(FeedKind.RSS, max_items=0)


# -- determinism --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("count", [0, 3])
def test_same_posts_give_byte_identical_feeds_at_different_times(kind, count, monkeypatch):
    import feedgen.entry
    import feedgen.feed

    posts = [make_post(n, f"text {n}") for n in range(count)]
    first = render(kind, posts)

    # Five years later by feedgen's clock (its defaults read datetime.now);
    # feedgen also checks isinstance(value, datetime) against the patched name.
    class AnyDatetime(type):
        def __instancecheck__(cls, value):
            return isinstance(value, datetime)

    class Later(datetime, metaclass=AnyDatetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2031, 6, 1, 12, 0, 0, tzinfo=tz or UTC)

    monkeypatch.setattr(feedgen.feed, "datetime", Later)
    monkeypatch.setattr(feedgen.entry, "datetime", Later)
    assert render(kind, posts) == first


@pytest.mark.parametrize("kind", KINDS)
def test_feed_carries_neither_the_clock_nor_feedgens_version(kind):
    body = render(kind, [make_post(1)]).decode()
    assert "python-feedgen" not in body
    assert f"<generator>{feeds.GENERATOR}</generator>" in body


@pytest.mark.parametrize("kind", KINDS)
def test_empty_timeline_is_dated_at_the_epoch(kind):
    parsed = parse(render(kind, []))
    assert parsed.entries == []
    assert calendar.timegm(parsed.feed.updated_parsed) == 0


# -- titles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("short and sweet", "short and sweet"),
        ("one two three four five six seven eight", "one two three four five six seven eight"),
        ("one two three four five six seven eight nine", "one two three four five six seven eight\u2026"),
        ("first line\n\tsecond   line", "first line second line"),
        ("  \n padded \n ", "padded"),
        ("x" * 80, "x" * 80),
        ("x" * 81, "x" * 79 + "\u2026"),
        ("a " + "y" * 200, "a " + "y" * 77 + "\u2026"),
        (" \n\t ", "\u2026"),
    ],
)
def test_title_is_the_first_words_on_one_line(text, title):
    assert feeds.entry_title(text) == title


# -- hostile text -------------------------------------------------------------

HOSTILE_TEXTS = [
    "<script>alert('x')</script>",
    "<b>bold</b> & <i>italic</i>",
    "&amp; is not &, &lt; is not <, &#60; neither",
    "end of CDATA ]]> and again ]]]]><![CDATA[>",
    "\"double\" and 'single' quotes",
    "emoji 😀 family 👩\u200d👩\u200d👧 flag 🇺🇦 skin 👍🏽",
    "שלום עולם mixed with English",
    "\u202eevil override\u202c and marks \u200f\u200e\u061c",
    "مرحبا بالعالم",
    "a" * 5000,
    "word" + "x" * 3000 + " tail",
    "tabs\tand\nnewlines\n\n\nand\ttabs\t",
    "\nstarts and ends with newlines\n",
    "   leading and trailing spaces   ",
    "line\u2028separator and paragraph\u2029separator",
    "noncharacters \ufdd0\ufdef and the last \U0010ffff and \U0001fffe",
    "private use \ue000 \U000f0000 and BOM \ufeff zero width \u200b",
    "combining e\u0301 and zalgo z\u0336\u0337\u0338",
    "<![CDATA[ not really ]]>",
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e 'boom'>]>&e;",
    "http://example.com/?a=1&b=2#frag",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_text_keeps_the_feed_well_formed_and_round_trips(kind, text):
    assert normalise_text(text, 10_000) == text, "the write path would have changed or refused this text"
    posts = [make_post(1, text), make_post(2, "a calm neighbour")]
    body = render(kind, posts)
    etree.fromstring(body)
    assert_texts_round_trip(kind, posts, body)


@pytest.mark.parametrize("kind", KINDS)
def test_user_markup_is_never_markup_in_the_feed(kind):
    body = render(kind, [make_post(1, "<img src=x onerror=alert(1)><a href='javascript:x'>y</a>")])
    content = parsed_body_html(kind, parse(body).entries[0])
    assert "<img" not in content
    assert "<a " not in content
    assert "&lt;img" in content


def random_allowed_text(rng: random.Random) -> str:
    """A string drawn from everything the write path accepts, weighted
    towards what breaks XML and HTML."""
    ranges = [
        (0x09, 0x0A),  # tab, newline
        (0x20, 0x7E),  # ASCII, including < > & " ' ] /
        (0xA0, 0x2FF),  # Latin-1 and extensions
        (0x590, 0x6FF),  # Hebrew, Arabic
        (0x200B, 0x202E),  # zero-width, RTL/LTR marks and overrides, line separators
        (0x2066, 0x2069),  # bidi isolates
        (0xD7F0, 0xD7FF),  # just below the surrogates
        (0xE000, 0xE0FF),  # private use
        (0xFDD0, 0xFDEF),  # noncharacters XML still allows
        (0xFFF0, 0xFFFD),  # just below the forbidden U+FFFE/U+FFFF
        (0x1F300, 0x1FAFF),  # astral emoji
        (0x10000, 0x10FFFF),  # the rest of the astral planes
    ]
    markup = ["<", ">", "&", "]]>", "<br/>", "&amp;", "\n", "\t", '"', "'", "\u200d"]
    pieces = []
    for _ in range(rng.randint(1, 60)):
        if rng.random() < 0.2:
            pieces.append(rng.choice(markup))
        else:
            low, high = rng.choice(ranges)
            pieces.append(chr(rng.randint(low, high)))
    return "".join(pieces)


@pytest.mark.parametrize("kind", KINDS)
def test_any_text_the_write_path_accepts_round_trips(kind):
    rng = random.Random(20261123)
    checked = 0
    for batch in range(20):
        texts = []
        while len(texts) < 25:
            candidate = random_allowed_text(rng)
            if candidate.strip():
                texts.append(normalise_text(candidate, 10_000))
        posts = [make_post(batch * 100 + n, text) for n, text in enumerate(texts)]
        body = render(kind, posts)
        etree.fromstring(body)
        assert_texts_round_trip(kind, posts, body)
        checked += len(posts)
    assert checked == 500


# -- caching ------------------------------------------------------------------

MARKER = FeedMarker(changed_at="2026-11-23T20:38:42.179Z", version="01KAT:7")


def test_etag_is_strong_quoted_and_stable():
    etag = feeds.etag_for(MARKER, channel(FeedKind.RSS), FeedKind.RSS)
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert feeds.etag_for(replace(MARKER), channel(FeedKind.RSS), FeedKind.RSS) == etag


@pytest.mark.parametrize(
    ("marker", "chan", "kind"),
    [
        (replace(MARKER, version="01KAT:8"), channel(FeedKind.RSS), FeedKind.RSS),
        (replace(MARKER, changed_at="2026-11-23T20:38:43.000Z"), channel(FeedKind.RSS), FeedKind.RSS),
        (MARKER, channel(FeedKind.RSS), FeedKind.ATOM),
        (MARKER, replace(channel(FeedKind.RSS), title="renamed"), FeedKind.RSS),
        (MARKER, channel(FeedKind.RSS, max_items=10), FeedKind.RSS),
    ],
    ids=["version", "changed_at", "kind", "title", "max_items"],
)
def test_etag_changes_with_anything_that_changes_the_bytes(marker, chan, kind):
    assert feeds.etag_for(marker, chan, kind) != feeds.etag_for(MARKER, channel(FeedKind.RSS), FeedKind.RSS)


def test_last_modified_is_an_http_date_in_whole_seconds():
    assert feeds.last_modified_for(MARKER) == "Mon, 23 Nov 2026 20:38:42 GMT"


@pytest.mark.parametrize("kind", KINDS)
def test_feed_headers_carry_type_validators_and_a_short_public_cache(kind):
    headers = feeds.feed_headers(kind, etag='"abc"', last_modified="Mon, 23 Nov 2026 20:38:42 GMT")
    assert headers == {
        "Content-Type": {FeedKind.RSS: "application/rss+xml; charset=utf-8"}.get(
            kind, "application/atom+xml; charset=utf-8"
        ),
        "ETag": '"abc"',
        "Last-Modified": "Mon, 23 Nov 2026 20:38:42 GMT",
        "Cache-Control": "public, max-age=30",
    }


def test_a_client_repeating_the_validators_gets_a_304_until_the_timeline_changes():
    # Given a reader that stored the validators of the last response
    chan = channel(FeedKind.ATOM)
    sent = feeds.feed_headers(
        FeedKind.ATOM, etag=feeds.etag_for(MARKER, chan, FeedKind.ATOM), last_modified=feeds.last_modified_for(MARKER)
    )
    request = {"If-None-Match": sent["ETag"], "If-Modified-Since": sent["Last-Modified"]}
    # Then the same marker is not modified, and a new post is
    assert is_not_modified(request, etag=sent["ETag"], last_modified=sent["Last-Modified"])
    changed = FeedMarker(changed_at="2026-11-23T20:38:42.500Z", version="01KAU:8")
    assert not is_not_modified(
        request, etag=feeds.etag_for(changed, chan, FeedKind.ATOM), last_modified=feeds.last_modified_for(changed)
    )


# -- does a young body show the marker's last changes? ------------------------

A, B, C, D = (ids.smallest_ulid_at(START_MILLIS + n * 1000) for n in range(4))  # oldest first
Lane = feeds.Lane


@pytest.mark.parametrize(
    ("lanes", "shown", "max_items", "expected"),
    [
        ((), [], 3, True),
        ((Lane(C),), [C, B, A], 3, True),
        ((Lane(C),), [B, A], 3, False),  # the index has not got C yet
        ((Lane(C),), [B, A], 2, False),  # full, but C is newer than what is shown
        ((Lane(A),), [C, B], 2, True),  # full, and A is too old to be shown anyway
        ((Lane(A),), [C, B], 3, False),  # not full: A should be there
        ((Lane(C, B),), [C, A], 3, True),
        ((Lane(C, B),), [C, B, A], 3, False),  # the index still holds the deleted B
        ((Lane(C, C),), [B, A], 3, True),  # C was added, then deleted
        ((Lane(C, C),), [C, B, A], 3, False),
        ((Lane(C, B),), [A], 3, False),  # C deleted before B: not provable
        ((Lane(None, B),), [A], 3, False),  # changed before the ids were recorded
        ((Lane(D), Lane(B)), [D, C, B], 3, True),  # one lane per public shard
        ((Lane(D), Lane(B)), [D, C, A], 3, False),
    ],
)
def test_a_young_body_is_current_only_when_it_shows_each_lanes_last_changes(lanes, shown, max_items, expected):
    assert feeds.shows_last_changes(lanes, shown, max_items) is expected


# -- static publishing keys ---------------------------------------------------


@pytest.mark.parametrize(
    ("timeline", "kind", "key"),
    [
        (feeds.PUBLIC_TIMELINE, FeedKind.RSS, "feeds/public.rss"),
        (feeds.PUBLIC_TIMELINE, FeedKind.ATOM, "feeds/public.atom"),
        (Timeline("alice"), FeedKind.RSS, "feeds/users/alice.rss"),
        (Timeline("bob_42"), FeedKind.ATOM, "feeds/users/bob_42.atom"),
    ],
)
def test_static_keys(timeline, kind, key):
    assert feeds.static_key(timeline, kind) == key


@pytest.mark.parametrize("username", ["../admin", "Alice", "", "a/b", "x" * 31])
def test_a_username_that_could_escape_its_key_is_refused(username):
    with pytest.raises(ValidationFailed):
        Timeline(username)


# -- cold start ---------------------------------------------------------------


def loaded_modules_after(code: str) -> list[str]:
    probe = (
        f"import json, sys\n{code}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('feedgen', 'lxml'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_importing_the_module_loads_neither_feedgen_nor_lxml():
    assert loaded_modules_after("import chalicelib.feeds.render, chalicelib.feeds.conditional") == []


def test_rendering_does_load_feedgen_so_the_probe_can_see_it():
    code = (
        "from chalicelib.feeds import render as feeds\n"
        "feeds.render_rss([], feeds.FeedChannel(feeds.PUBLIC_TIMELINE, 't', 'd', 'https://s', 'https://a', 'https://b'))"
    )
    loaded = loaded_modules_after(code)
    assert "feedgen.feed" in loaded
    assert "lxml.etree" in loaded


def test_importing_the_app_and_its_jobs_loads_neither_feedgen_nor_lxml():
    # Every route and the maintenance job import through app and wiring;
    # only a feed actually rendered may pay for feedgen and lxml.
    jobs = "chalicelib.feeds.live, chalicelib.feeds.publisher, chalicelib.maintenance"
    assert loaded_modules_after(f"import app, chalicelib.wiring, {jobs}") == []
