"""CORS as Mastodon sends it, and 404 (not API Gateway's 403) for every path
Lifeboat does not serve: through the app and the local gateway, as the
deployed API Gateway routes them (devtools/local_gateway.py)."""

from __future__ import annotations

import pytest

from chalicelib.api import cors
from tests.conftest import ADMIN_TOKEN

PREFLIGHT = {"Origin": "https://elk.zone", "Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/statuses",  # a declared route
        "/api/v1/accounts/alice",  # a declared route with a parameter
        "/api/v1/no/such/thing",  # no route at all: the catch-all
        "/.well-known/nodeinfo",
        "/.well-known/unknown",
        "/nodeinfo/2.0",
        "/oauth/token",
        "/oauth/revoke",
    ],
)
def test_a_preflight_on_a_cross_origin_path_is_answered(api, path):
    reply = api.call(
        "OPTIONS", path, headers={**PREFLIGHT, "Access-Control-Request-Headers": "authorization,idempotency-key"}
    )
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert set(reply.headers["Access-Control-Allow-Methods"].replace(" ", "").split(",")) >= {"GET", "POST", "DELETE"}
    assert reply.headers["Access-Control-Allow-Headers"] == "authorization,idempotency-key"
    assert reply.headers["Access-Control-Max-Age"] == str(cors.MAX_AGE_SECONDS)


def test_a_preflight_naming_no_headers_allows_what_mastodon_clients_send(api):
    reply = api.call("OPTIONS", "/api/v1/timelines/home", headers=PREFLIGHT)
    allowed = {name.strip().lower() for name in reply.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed >= {"authorization", "content-type", "idempotency-key"}


def test_a_preflight_with_a_header_list_that_is_not_one_gets_the_default_list(api):
    reply = api.call("OPTIONS", "/api/v1/statuses", headers={**PREFLIGHT, "Access-Control-Request-Headers": "a\tb"})
    assert reply.headers["Access-Control-Allow-Headers"] == cors.DEFAULT_ALLOWED_HEADERS


@pytest.mark.parametrize("path", ["/admin/users", "/admin/nothing/here", "/oauth/authorize", "/posts"])
def test_no_preflight_off_the_cross_origin_paths(api, path):
    reply = api.call("OPTIONS", path, headers=PREFLIGHT)
    assert reply.status in (404, 405)
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_answers_on_the_api_carry_the_cors_headers_and_expose_link(api):
    reply = api.get("/api/v1/timelines/public", headers={"Origin": "https://phanpy.social"})
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "Link" in [name.strip() for name in reply.headers["Access-Control-Expose-Headers"].split(",")]
    assert "Access-Control-Allow-Credentials" not in reply.headers


def test_error_answers_on_the_api_carry_the_cors_headers_too(api):
    unauthorized = api.get("/api/v1/timelines/home", token="not-a-token")
    too_large = api.post("/api/v1/statuses", raw="x" * 20_000, headers={"Content-Type": "text/plain"})
    assert (unauthorized.status, too_large.status) == (401, 413)
    for reply in (unauthorized, too_large):
        assert reply.headers["Access-Control-Allow-Origin"] == "*"


def test_admin_answers_carry_no_cors_headers(api):
    reply = api.post("/admin/users", {"username": "alice"}, token=ADMIN_TOKEN)
    assert reply.status == 201
    assert not {name for name in reply.headers if name.lower().startswith("access-control-")}


@pytest.mark.parametrize("token", [None, "some-bearer-token"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_api_path_is_mastodons_404(api, method, token):
    reply = api.call(method, "/api/v1/push/subscription", token=token, headers={"Content-Type": "text/plain"})
    assert (reply.status, reply.body) == (404, {"error": "Record not found"})
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("token", [None, "some-bearer-token"])
def test_an_unknown_path_elsewhere_is_a_404_in_our_shape(api, token):
    reply = api.get("/no/such/page", token=token)
    assert reply.status == 404
    assert reply.body["error"] == "not_found"
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_chalices_own_errors_under_the_api_are_in_mastodons_shape_with_cors(api):
    # Deployed, API Gateway answers an undeclared method itself (404); locally the app says 405.
    wrong_method = api.call("PUT", "/api/v1/instance")
    wrong_type = api.call("GET", "/api/v1/instance", headers={"Content-Type": "text/csv"})
    assert (wrong_method.status, wrong_type.status) == (405, 415)
    for reply in (wrong_method, wrong_type):
        assert reply.body.keys() == {"error"}
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
    native = api.call("PUT", "/status")
    assert native.status == 405 and native.body["error"] == "method_not_allowed"


def test_an_unknown_path_below_a_declared_one_is_a_404(api):
    # /api/v1/statuses/{status_id} exists; one level deeper does not.
    reply = api.get("/api/v1/statuses/1/context/more")
    assert (reply.status, reply.body) == (404, {"error": "Record not found"})


def test_the_catch_all_shadows_no_declared_route(api):
    api.new_user("alice")
    assert api.get("/api/v1/accounts/alice").body["username"] == "alice"
    assert api.get("/api/v1/instance").status == 200
    assert api.get("/status").status == 200


def test_a_route_declared_on_a_cross_origin_path_gets_its_preflight_with_it():
    # Whichever module declares it, and wherever in app.py: the router adds the OPTIONS.
    from chalice import Chalice

    from chalicelib.api.routing import PUBLIC, router

    app = Chalice(app_name="preflight-probe")
    route = router(app)
    route("/oauth/token", methods=["POST"], scope=PUBLIC)(lambda: None)
    route("/admin/things", methods=["POST"], admin=True)(lambda: None)
    assert set(app.routes["/oauth/token"]) == {"POST", "OPTIONS"}
    assert app.routes["/oauth/token"]["OPTIONS"].view_function.scope == PUBLIC
    assert set(app.routes["/admin/things"]) == {"POST"}
