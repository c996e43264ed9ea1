"""Properties of the whole HTTP edge, through the Chalice test client: any
body, query or header a client can send gets an answer below 500, and
every error answer is JSON in the route family's shape.

One moto-backed app serves all the examples of a test (its state only
grows, and no example depends on another's). Bounded and reproducible
(tests/properties.py).
"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ADMIN_TOKEN
from tests.functional.test_no_500s import send
from tests.properties import any_char, any_text, bounded, http_dates, json_bodies, numberish

BODY_ROUTES = [
    ("POST", "/posts", "user"),
    ("POST", "/admin/users", "admin"),
    ("PUT", "/admin/users/alice/upstream-token", "admin"),
    ("POST", "/admin/users/alice/following", "admin"),
    ("POST", "/api/v1/statuses", "user"),
    ("POST", "/api/v1/accounts/bob/follow", "user"),
]
LIST_ROUTES = [
    ("/users/alice/posts", "user"),
    ("/timeline/public", "user"),
    ("/admin/dead-letters", "admin"),
    ("/users/alice/feed.atom", "user"),
    ("/api/v1/timelines/public", "user"),
    ("/api/v1/timelines/home", "user"),
    ("/api/v1/accounts/alice/statuses", "user"),
    ("/api/v1/accounts/alice/following", "user"),
    ("/api/v1/accounts/lookup", "user"),
    ("/admin/replay", "admin"),
]
QUERY_NAMES = ["limit", "cursor", "max_id", "since_id", "min_id", "dry_run", "pinned", "only_media", "acct", "local"]
CONTENT_TYPES = [
    "application/json",
    "Application/JSON; charset=utf-16",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=B",
    "multipart/form-data",
    "text/csv",
    "text/csv; charset=latin-1",
    "",
]
csv_bodies = st.lists(st.sampled_from(["Account address", ",", "\r", "\n", '"', "bob", "@x@y", "\x00"]) | any_char).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
)
# Bytes, and text as a Lambda event carries a non-binary body (which may
# hold a lone surrogate).
bodies = st.one_of(json_bodies, csv_bodies, st.binary(max_size=80), any_text)


@pytest.fixture
def tokens(api):
    alice, _ = api.new_user("alice"), api.new_user("bob")
    return {"user": alice, "admin": ADMIN_TOKEN}


def assert_answered_in_shape(path: str, status: int, answer) -> None:
    assert status < 500, (path, status, answer)
    if status >= 400:
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str), (path, answer)
        if not path.startswith("/api/"):
            assert isinstance(answer.get("message"), str), (path, answer)


def quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="", errors="surrogatepass")


@bounded(250, http=True)
@given(st.sampled_from(BODY_ROUTES), st.sampled_from(CONTENT_TYPES) | any_text, bodies)
def test_any_body_on_any_route_that_takes_one_is_answered_below_500(api, tokens, route, content_type, body):
    method, path, who = route
    status, answer = send(api, method, path, body, tokens[who], content_type)

    assert_answered_in_shape(path, status, answer)


@bounded(250, http=True)
@given(
    st.sampled_from(LIST_ROUTES),
    st.lists(st.tuples(st.sampled_from(QUERY_NAMES), numberish), max_size=4),
)
def test_any_query_on_any_list_route_is_answered_below_500(api, tokens, route, params):
    path, who = route
    query = "&".join(f"{quoted(name)}={quoted(value)}" for name, value in params)
    method = "POST" if path == "/admin/replay" else "GET"
    status, answer = send(api, method, f"{path}?{query}", None, tokens[who], "application/json")

    assert_answered_in_shape(path, status, answer)


# What an HTTP client can put in a header: Latin-1 text without line
# breaks; API Gateway may hand over decoded UTF-8, or (from its event's
# JSON) a lone surrogate, so any character is tried.
header_text = any_text.map(lambda text: text.replace("\r", "").replace("\n", ""))
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(CONTENT_TYPES) | header_text,
        "Authorization": header_text.map("Bearer ".__add__) | header_text | st.sampled_from(["Bearer", "Basic eA=="]),
        "Idempotency-Key": header_text | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=300),
        "If-None-Match": header_text | st.sampled_from(["*", 'W/"x"', '"x", W/"y"', '"']),
        "If-Modified-Since": header_text | http_dates,
        "Content-Length": numberish,
        "Host": header_text,
        "X-Forwarded-Proto": header_text,
    },
)
# Most of them read Authorization; the feeds read the conditional headers.
HEADER_ROUTES = [
    ("POST", "/posts", b'{"text": "hi"}'),
    ("POST", "/api/v1/statuses", b"status=hi"),
    ("GET", "/api/v1/timelines/home", None),
    ("GET", "/api/v1/accounts/verify_credentials", None),
    ("POST", "/admin/users", b'{"username": "carol"}'),
    ("DELETE", "/posts/01ARZ3NDEKTSV4RRFFQ69G5FAV", None),
    ("GET", "/users/alice/feed.rss", None),
    ("GET", "/timeline/public/feed.atom", None),
    ("GET", "/api/v1/accounts/alice", None),
]


@bounded(250, http=True)
@given(st.sampled_from(HEADER_ROUTES), HEADERS)
def test_any_headers_are_answered_below_500(api, tokens, route, headers):
    method, path, body = route
    response = api._client.http.request(method, path, headers=headers, body=body)
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    answer = json.loads(response.body) if is_json and response.body else response.body

    assert_answered_in_shape(path, response.status_code, answer)
