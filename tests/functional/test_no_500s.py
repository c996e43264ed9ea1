"""No input makes a 500: every route, every method it takes, hostile input.

Path parameters, query strings, bodies and content types a confused or
malicious client might send, with and without tokens. Each answer must be
below 500, and every error must be JSON in one of the two documented
shapes (the native {"error", "message"} or Mastodon's {"error"}), or, on
the pages a person's browser opens, an HTML page that says what is wrong.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest

from tests.conftest import ADMIN_TOKEN

BROWSER_PAGES = {"/oauth/authorize"}
HOSTILE_SEGMENTS = ["nobody", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "99999999999999999999999", "-1", "%00", "a%2Fb", "\u05e9"]
HOSTILE_QUERIES = [
    "",
    "?limit=-1",
    "?limit=99999999999999999999",
    "?cursor=%00&limit=abc",
    "?max_id=abc&since_id=-5&min_id=%E2%80%AE",
    "?acct=&dry_run=maybe",
    "?limit=1&limit=2",
]
HOSTILE_BODIES = [
    (None, "application/json"),
    ("{not json", "application/json"),
    ("[]", "application/json"),
    ('{"text": null, "status": 7, "username": ["x"], "token": {}}', "application/json"),
    ('{"text": "' + "\U0001f6df" * 600 + '"}', "application/json"),
    ("status=&in_reply_to_id=zzz&visibility=secret", "application/x-www-form-urlencoded"),
    ("\xff\xfe", "text/csv"),
    ("Account address,Show boosts\n@@@,maybe\n", "text/csv"),
]


def send(api, method: str, path: str, body, token, content_type: str):
    """One raw request: feeds answer XML, so nothing is decoded up front."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = api._client.http.request(method, path, headers=headers, body=body)
    text = response.body.decode("utf-8", "replace") if response.body else ""
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    return response.status_code, (json.loads(text) if is_json and text else text)


def concrete_paths(template: str) -> list[str]:
    names = re.findall(r"{(\w+)}", template)
    if not names:
        return [template]
    paths = []
    for values in itertools.product(HOSTILE_SEGMENTS[:4], repeat=len(names)):
        path = template
        for name, value in zip(names, values, strict=True):
            path = path.replace("{" + name + "}", value, 1)
        paths.append(path)
    return paths


@pytest.fixture
def routes():
    import app

    return [(path, method) for path, methods in app.app.routes.items() for method in methods]


def test_no_route_answers_500_to_hostile_input(api, routes):
    user = api.new_user("fuzzer")
    api.post("/posts", {"text": "something to find"}, token=user)
    tokens = [None, user, ADMIN_TOKEN, "lb_forged"]
    seen = 0
    for template, method in routes:
        for path, query in itertools.product(concrete_paths(template), HOSTILE_QUERIES[:4]):
            for (body, content_type), token in itertools.product(HOSTILE_BODIES, tokens):
                status, answer = send(api, method, path + query, body, token, content_type)
                seen += 1
                assert status < 500, (method, path + query, body, status, answer)
                if status >= 400 and template in BROWSER_PAGES and status not in (413, 415):
                    assert isinstance(answer, str) and answer.startswith("<!DOCTYPE html>"), (method, path, answer)
                elif status >= 400:
                    assert isinstance(answer, dict) and isinstance(answer.get("error"), str), (method, path, answer)
    assert seen > 1000


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_queries_on_lists(api, query):
    for path in ("/timeline/public", "/api/v1/timelines/public", "/users/fuzzer/posts", "/timeline/public/feed.atom"):
        status, answer = send(api, "GET", path + query, None, None, "application/json")
        assert status < 500, (path + query, answer)


def test_error_bodies_are_json(api):
    reply = api.call("POST", "/posts", raw="{", token="lb_forged")
    assert reply.status == 401
    assert json.loads(json.dumps(reply.body))["error"] == "invalid_token"
