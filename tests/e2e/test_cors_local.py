"""Over real HTTP, against ./scripts/run on loopback: the preflight a
browser app sends before its first call, and 404 in Mastodon's shape for a
path Lifeboat does not serve, as a browser (and Elk's fallbacks) see them."""

from __future__ import annotations

import pytest

from tests.e2e.stack import start_stack

pytestmark = pytest.mark.e2e

ELK = "https://elk.zone"


@pytest.fixture(scope="module")
def stack():
    running = start_stack()
    yield running
    running.stop()


def test_a_browser_preflight_before_posting_is_answered(stack):
    asked = {
        "Origin": ELK,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
    }
    for path in ("/api/v1/statuses", "/api/v1/accounts/relationships", "/api/v2/not/served/yet", "/oauth/token"):
        reply = stack.call("OPTIONS", path, headers=asked)
        assert reply.status == 200, path
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in reply.headers["Access-Control-Allow-Methods"]
        assert reply.headers["Access-Control-Allow-Headers"] == "authorization,content-type,idempotency-key"
        assert int(reply.headers["Access-Control-Max-Age"]) > 0


def test_a_cross_origin_answer_exposes_the_link_header(stack):
    reply = stack.call("GET", "/api/v1/timelines/public", headers={"Origin": ELK})
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "Link" in reply.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("token", [None, "a-bearer-token"])
def test_an_unknown_path_is_a_404_not_a_403(stack, token):
    api = stack.call("GET", "/api/v1/push/subscription", token=token, headers={"Origin": ELK})
    assert (api.status, api.body) == (404, {"error": "Record not found"})
    assert api.headers["Access-Control-Allow-Origin"] == "*"
    native = stack.call("GET", "/not/a/page", token=token)
    assert native.status == 404 and native.body["error"] == "not_found"
    assert "Access-Control-Allow-Origin" not in native.headers


def test_the_admin_api_sends_no_cors_headers(stack):
    reply = stack.call("OPTIONS", "/admin/users", headers={"Origin": ELK, "Access-Control-Request-Method": "POST"})
    assert reply.status != 200
    assert "Access-Control-Allow-Origin" not in reply.headers
