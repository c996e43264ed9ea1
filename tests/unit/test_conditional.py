"""The 304 decision table of RFC 9110 section 13, with plain dicts."""

from __future__ import annotations

import pytest

from chalicelib.feeds.conditional import is_not_modified

ETAG = '"0123abcd"'
LAST_MODIFIED = "Mon, 23 Nov 2026 20:38:42 GMT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        # If-None-Match alone
        ({"If-None-Match": ETAG}, True),
        ({"If-None-Match": '"other"'}, False),
        ({"If-None-Match": f"W/{ETAG}"}, True),
        ({"If-None-Match": f'"other", W/"x", {ETAG}'}, True),
        ({"If-None-Match": f'"other",{ETAG}'}, True),
        ({"If-None-Match": '"other", W/"x"'}, False),
        ({"If-None-Match": "*"}, True),
        ({"If-None-Match": " * "}, True),
        ({"If-None-Match": "0123abcd"}, False),
        ({"If-None-Match": ""}, False),
        ({"If-None-Match": '"0123abc"'}, False),
        ({"if-none-match": ETAG}, True),
        ({"IF-NONE-MATCH": ETAG}, True),
        # If-Modified-Since alone
        ({"If-Modified-Since": LAST_MODIFIED}, True),
        ({"If-Modified-Since": "Mon, 23 Nov 2026 20:38:43 GMT"}, True),
        ({"If-Modified-Since": "Mon, 23 Nov 2026 20:38:41 GMT"}, False),
        ({"If-Modified-Since": "Monday, 23-Nov-26 20:38:42 GMT"}, True),
        ({"If-Modified-Since": "Mon Nov 23 20:38:42 2026"}, True),
        ({"If-Modified-Since": "Mon Nov 23 20:38:41 2026"}, False),
        ({"If-Modified-Since": "Mon, 23 Nov 2026 21:38:42 +0100"}, True),
        ({"If-Modified-Since": "not a date"}, False),
        ({"If-Modified-Since": ""}, False),
        ({"If-Modified-Since": "Mon, 23 Nov 2026 25:38:42 GMT"}, False),
        ({"if-modified-since": LAST_MODIFIED}, True),
        # Both: If-None-Match decides and If-Modified-Since is ignored
        ({"If-None-Match": '"other"', "If-Modified-Since": LAST_MODIFIED}, False),
        ({"If-None-Match": ETAG, "If-Modified-Since": "Mon, 23 Nov 2026 20:38:41 GMT"}, True),
        ({"If-None-Match": ETAG, "If-Modified-Since": "not a date"}, True),
        # Unrelated headers change nothing
        ({"Accept": "application/rss+xml", "ETag": ETAG}, False),
    ],
)
def test_not_modified_decision_table(headers, expected):
    assert is_not_modified(headers, etag=ETAG, last_modified=LAST_MODIFIED) is expected


def test_a_weak_current_tag_matches_a_strong_request_tag():
    assert is_not_modified({"If-None-Match": ETAG}, etag=f"W/{ETAG}", last_modified=LAST_MODIFIED)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"If-Modified-Since": LAST_MODIFIED}, False),
        ({"If-Modified-Since": "Mon, 23 Nov 2036 20:38:42 GMT"}, False),
        ({"If-None-Match": ETAG, "If-Modified-Since": LAST_MODIFIED}, True),
        ({"If-None-Match": ETAG}, True),
    ],
)
def test_without_a_comparable_date_only_the_etag_can_give_a_304(headers, expected):
    assert is_not_modified(headers, etag=ETAG, last_modified=None) is expected
