"""Input that once made a 500 or a wrong answer at the HTTP edge, through
the Chalice test client: each is a 4xx in the route family's error shape
now, or is read the way a client means it."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.functional.test_mastodon_api import FORM, post_status

JSON = {"Content-Type": "application/json"}
# Under the 16 KiB body limit, and deeper than json.loads can recurse.
DEEP_ARRAYS = "[" * 15_000
DEEP_OBJECTS = '{"a":' * 2_000 + "1" + "}" * 2_000
FORGED = {"Host": "evil.example", "X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "evil.example"}


@pytest.fixture
def alice(api):
    return api.new_user("alice")


def token_for(kind: str, user: str) -> str:
    return ADMIN_TOKEN if kind == "admin" else user


@pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])
@pytest.mark.parametrize(
    ("method", "path", "who"),
    [
        ("POST", "/posts", "user"),
        ("POST", "/admin/users", "admin"),
        ("PUT", "/admin/users/alice/upstream-token", "admin"),
        ("POST", "/api/v1/statuses", "user"),
    ],
)
def test_deeply_nested_json_is_a_400_on_every_json_route(api, alice, method, path, who, body):
    reply = api.call(method, path, token=token_for(who, alice), raw=body, headers=JSON)

    assert reply.status == 400, reply.body
    if path.startswith("/api/"):
        assert set(reply.body) == {"error"} and "deeper than 32" in reply.body["error"]
    else:
        assert reply.body["error"] == "invalid_json" and "deeper than 32" in reply.body["message"]


NATIVE_LISTS = [("/users/alice/posts", "user"), ("/timeline/public", "user"), ("/admin/dead-letters", "admin")]
MASTODON_LISTS = [
    ("/api/v1/timelines/public", "user"),
    ("/api/v1/timelines/home", "user"),
    ("/api/v1/accounts/alice/statuses", "user"),
    ("/api/v1/accounts/alice/following", "user"),
]
ODD_LIMITS = ["²", "٣", "\uff15", "9" * 5000]


@pytest.mark.parametrize("limit", ODD_LIMITS, ids=["superscript", "arabic", "fullwidth", "5000-digits"])
@pytest.mark.parametrize(("path", "who"), NATIVE_LISTS)
def test_a_native_limit_that_is_not_ascii_digits_is_a_400(api, alice, path, who, limit):
    reply = api.get(f"{path}?limit={urllib.parse.quote(limit)}", token=token_for(who, alice))

    assert reply.status == 400, reply.body
    assert reply.body["error"] == "invalid_limit" and "ASCII" in reply.body["message"]


@pytest.mark.parametrize("limit", ODD_LIMITS, ids=["superscript", "arabic", "fullwidth", "5000-digits"])
@pytest.mark.parametrize(("path", "who"), MASTODON_LISTS)
def test_a_mastodon_limit_that_is_not_ascii_digits_is_a_422(api, alice, path, who, limit):
    # 422, as for the Mastodon API's other malformed parameters (max_id=abc).
    reply = api.get(f"{path}?limit={urllib.parse.quote(limit)}", token=token_for(who, alice))

    assert reply.status == 422, reply.body
    assert set(reply.body) == {"error"} and "ASCII" in reply.body["error"]


@pytest.mark.parametrize("name", ["max_id", "since_id", "min_id"])
@pytest.mark.parametrize("value", ["²", "٣", "9" * 5000, "-1"])
def test_mastodon_id_parameters_in_odd_digits_are_a_422(api, name, value):
    reply = api.get(f"/api/v1/timelines/public?{name}={urllib.parse.quote(value)}")

    assert reply.status == 422 and reply.body == {"error": f"{name} must be a status id"}


@pytest.mark.parametrize("max_id", ["\x00zz", "A" * 2000, "Bob", "bob;drop", "é"])
def test_following_max_id_must_be_an_account_id(api, alice, max_id):
    reply = api.get(f"/api/v1/accounts/alice/following?max_id={urllib.parse.quote(max_id)}")

    assert reply.status == 422, reply.body
    assert reply.body == {"error": "max_id must be an account id"}


def test_following_pages_by_account_id(api, alice):
    for name in ("bob", "carol", "dave"):
        api.new_user(name)
        api.post(f"/api/v1/accounts/{name}/follow", token=alice)

    first = api.get("/api/v1/accounts/alice/following?limit=2")
    rest = api.get("/api/v1/accounts/alice/following?limit=2&max_id=carol")

    assert [account["id"] for account in first.body] == ["bob", "carol"]
    assert [account["id"] for account in rest.body] == ["dave"]


def test_a_multipart_content_type_beyond_latin_1_is_a_400(api, alice):
    headers = {"Content-Type": "multipart/form-data; boundary=\u0100"}
    reply = api.call("POST", "/api/v1/statuses", token=alice, headers=headers, raw=b"--\xc4\x80--\r\n")

    assert reply.status == 400 and set(reply.body) == {"error"}


def test_a_multipart_status_keeps_its_non_ascii_text(api, alice):
    body = '--B\r\nContent-Disposition: form-data; name="status"\r\n\r\ncafé 🛟\r\n--B--\r\n'.encode()
    headers = {"Content-Type": "multipart/form-data; boundary=B"}
    reply = api.call("POST", "/api/v1/statuses", token=alice, headers=headers, raw=body)

    assert reply.status == 200, reply.body
    assert reply.body["content"] == "<p>café 🛟</p>"


@pytest.mark.parametrize("encoded", ["%ff%fe", "%ed%a0%80", "caf%c3"])
def test_a_form_status_with_percent_encoded_bytes_that_are_not_utf8_is_a_400(api, alice, encoded):
    reply = api.call("POST", "/api/v1/statuses", token=alice, headers=FORM, raw=f"status={encoded}".encode())

    assert reply.status == 400, reply.body
    assert api.get("/api/v1/accounts/alice/statuses").body == []


def test_a_form_status_with_percent_encoded_utf8_keeps_its_text(api, alice):
    raw = "status=" + urllib.parse.quote("café 🛟")
    reply = api.call("POST", "/api/v1/statuses", token=alice, headers=FORM, raw=raw.encode())

    assert reply.status == 200, reply.body
    assert reply.body["content"] == "<p>café 🛟</p>"


def test_a_json_status_with_an_uppercase_media_type_is_read_as_json(api, alice):
    headers = {"Content-Type": "Application/JSON; charset=UTF-8"}
    reply = api.call("POST", "/api/v1/statuses", token=alice, headers=headers, raw=json.dumps({"status": "hi"}))

    assert reply.status == 200, reply.body
    assert reply.body["content"] == "<p>hi</p>"


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n"], ids=["bare-cr", "lf", "crlf"])
def test_a_following_import_ends_lines_at_a_bare_cr_as_at_lf(api, alice, ending):
    api.new_user("bob")
    api.new_user("carol")
    csv = ending.join(["Account address,Show boosts", "bob,true", "carol,false", ""])
    headers = {"Content-Type": "text/csv"}
    reply = api.call("POST", "/admin/users/alice/following", token=ADMIN_TOKEN, headers=headers, raw=csv)

    assert reply.status == 200, reply.body
    assert reply.body == {"followed": 2, "already_following": 0, "skipped": []}
    assert api.get("/api/v1/accounts/alice").body["following_count"] == 2


def test_a_body_over_the_limit_is_413_whatever_content_length_claims(api, alice):
    body = json.dumps({"text": "x" * 54_000})
    reply = api.call("POST", "/posts", token=alice, raw=body, headers={"Content-Length": "10"})

    assert reply.status == 413 and reply.body["error"] == "body_too_large"
    assert api.get("/users/alice/posts").body["posts"] == []


def test_a_content_length_over_the_limit_is_refused_early(api, alice):
    reply = api.call("POST", "/posts", token=alice, body={"text": "hi"}, headers={"Content-Length": "99999999"})

    assert reply.status == 413 and reply.body["error"] == "body_too_large"


@pytest.mark.parametrize("declared", ["abc", "9" * 5000, "²", ""])
def test_an_unreadable_content_length_leaves_the_body_to_decide(api, alice, declared):
    reply = api.call("POST", "/posts", token=alice, body={"text": "hi"}, headers={"Content-Length": declared})

    assert reply.status == 201, reply.body


PUBLIC_BASE = "https://lifeboat.example/stage"


@pytest.fixture
def public_base(monkeypatch):
    # Read at the first request (wiring.settings()), after this is set.
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE + "/")
    return PUBLIC_BASE


def link_urls(reply) -> list[str]:
    header = {name.lower(): value for name, value in reply.headers.items()}.get("link", "")
    return re.findall(r"<([^>]+)>", header)


def every_url(value: object) -> list[str]:
    text = json.dumps(value)
    return re.findall(r"[a-z][a-z0-9+.-]*://[^\"\s>]+", text)


def test_links_are_built_from_public_base_url_not_the_clients_headers(api, public_base):
    alice, bob = api.new_user("alice"), api.new_user("bob")
    status = post_status(api, alice, "first", headers=FORGED).body
    post_status(api, alice, "second", headers=FORGED)
    api.post("/api/v1/accounts/alice/follow", token=bob, headers=FORGED)
    replies = [
        api.get(f"/api/v1/statuses/{status['id']}", headers=FORGED),
        api.get("/api/v1/accounts/alice", headers=FORGED),
        api.get("/api/v1/accounts/lookup?acct=alice", headers=FORGED),
        api.get("/api/v1/accounts/verify_credentials", token=alice, headers=FORGED),
        api.get("/api/v1/timelines/public?limit=1", headers=FORGED),
        api.get("/api/v1/timelines/home?limit=1", token=alice, headers=FORGED),
        api.get("/api/v1/accounts/alice/statuses?limit=1", headers=FORGED),
        api.get("/api/v1/accounts/bob/following?limit=1", headers=FORGED),
    ]
    api.new_user("carol")
    api.post("/api/v1/accounts/carol/follow", token=bob)
    replies.append(api.get("/api/v1/accounts/bob/following?limit=1", headers=FORGED))
    urls = every_url(status)
    for reply in replies:
        assert reply.status == 200, reply.body
        urls += every_url(reply.body) + link_urls(reply)

    assert len(urls) > 40
    assert sum(len(link_urls(reply)) for reply in replies) >= 7
    assert [url for url in urls if not url.startswith(public_base + "/")] == []
    assert "evil.example" not in json.dumps([reply.body for reply in replies] + [dict(r.headers) for r in replies])


def test_a_link_header_names_the_route_below_the_public_base(api, public_base):
    alice = api.new_user("alice")
    post_status(api, alice, "one")
    newest = post_status(api, alice, "two").body["id"]

    page = api.get("/api/v1/accounts/alice/statuses?limit=1&only_media=false", headers=FORGED)

    assert link_urls(page) == [
        f"{public_base}/api/v1/accounts/alice/statuses?limit=1&only_media=false&max_id={newest}",
        f"{public_base}/api/v1/accounts/alice/statuses?limit=1&only_media=false&min_id={newest}",
    ]


def test_a_username_with_a_trailing_newline_is_refused(api):
    # `$` matches before a final newline: "alice\n" once passed ^[a-z0-9_]{1,30}$.
    reply = api.post("/admin/users", {"username": "alice\n"}, token=ADMIN_TOKEN)

    assert reply.status == 422 and reply.body["error"] == "invalid_username"
    assert api.get("/admin/users/alice", token=ADMIN_TOKEN).status == 404


def test_a_language_with_a_trailing_newline_is_refused(api, alice):
    reply = post_status(api, alice, "hello", language="en\n")

    assert reply.status == 422 and "language" in reply.body["error"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/timelines/home"), ("POST", "/admin/users")])
def test_a_token_that_is_not_text_is_a_401(api, method, path):
    # A lone surrogate: what a Lambda event's JSON may hold for undecodable bytes.
    reply = api.call(method, path, body={}, headers={"Authorization": "Bearer lb_\ud800"})

    assert reply.status == 401 and isinstance(reply.body["error"], str)


@pytest.mark.parametrize("path", ["/posts", "/api/v1/statuses", "/admin/users"])
def test_a_body_that_is_not_unicode_text_is_a_400(api, alice, path):
    # The event carries a non-binary body as text; a lone surrogate in it
    # cannot be encoded back to bytes (Chalice's raw_body raised).
    token = ADMIN_TOKEN if path.startswith("/admin") else alice
    reply = api.call("POST", path, token=token, raw='{"text": "\ud800", "status": "\ud800", "username": "x"}')

    assert reply.status == 400, reply.body
    if path.startswith("/api/"):
        assert reply.body == {"error": "the request body is not valid text"}
    else:
        assert reply.body["error"] == "invalid_body"


def test_a_mastodon_body_over_the_limit_is_refused_in_mastodons_shape(api, alice):
    reply = api.call("POST", "/api/v1/statuses", token=alice, raw="status=" + "x" * 20_000, headers=FORM)

    assert reply.status == 413 and reply.body == {"error": "the request body exceeds 16384 bytes"}


def test_the_instance_names_the_public_domain_not_the_clients_host(api, public_base):
    v1 = api.get("/api/v1/instance", headers=FORGED).body
    v2 = api.get("/api/v2/instance", headers=FORGED).body

    assert (v1["uri"], v2["domain"]) == ("lifeboat.example", "lifeboat.example")
    assert "evil.example" not in json.dumps([v1, v2])


def test_the_instance_names_instance_domain_when_it_is_set(api, public_base, monkeypatch):
    monkeypatch.setenv("INSTANCE_DOMAIN", "social.example")

    assert api.get("/api/v2/instance", headers=FORGED).body["domain"] == "social.example"
