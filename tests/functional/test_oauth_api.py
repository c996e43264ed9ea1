"""The OAuth server through the app's routes (Chalice's test client, moto):
apps register, a person signs in on the authorize page, codes become tokens,
tokens are scoped and revoked one by one."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.parse

import bcrypt
import pytest

from chalicelib import wiring
from chalicelib.aws import clients as aws
from chalicelib.mirror.changes import AccountChange
from chalicelib.oauth import pkce
from chalicelib.upstream.tokens import ensure_key
from tests.conftest import ADMIN_TOKEN
from tests.oauth_forms import cookie_from, read_form

PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1:4000/callback"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Browser:
    """A person's browser against the app: HTML pages, a cookie, redirects not followed."""

    def __init__(self, api) -> None:
        self._http = api._client.http
        self.api = api
        self.cookie: str | None = None

    def get(self, path: str):
        headers = {"Cookie": self.cookie} if self.cookie else {}
        response = self._http.request("GET", path, headers=headers)
        if response.headers.get("Set-Cookie"):
            self.cookie = cookie_from(response.headers["Set-Cookie"])
        return response

    def post_form(self, path: str, fields: dict, headers: dict | None = None):
        sent = {**FORM, **({"Cookie": self.cookie} if self.cookie else {}), **(headers or {})}
        return self._http.request("POST", path, headers=sent, body=urllib.parse.urlencode(fields))


@pytest.fixture
def oauth_api(api):
    ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
    return api


def mirrored_user(username: str, password: str = PASSWORD, suspended: bool = False) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2a$")
    wiring.mirror_store().apply_account(
        AccountChange(username, username.title(), "2026-01-01T00:00:00.000Z", suspended, hashed)
    )
    return username


def register(api, redirect_uris=REDIRECT, scopes="read write follow push", name="Test app") -> dict:
    reply = api.post("/api/v1/apps", {"client_name": name, "redirect_uris": redirect_uris, "scopes": scopes})
    assert reply.status == 200, reply.body
    return reply.body


def authorize_path(app: dict, scope="read write follow push", redirect_uri=REDIRECT, **extra) -> str:
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": redirect_uri,
        "scope": scope,
        **extra,
    }
    return "/oauth/authorize?" + urllib.parse.urlencode(query)


def sign_in(browser: Browser, app: dict, username: str, password: str = PASSWORD, **query):
    page = browser.get(authorize_path(app, **query))
    assert page.status_code == 200, page.body
    form = read_form(page.body.decode())
    return browser.post_form(urllib.parse.urlsplit(form.action).path, form.filled(username, password))


def code_from(answer) -> str:
    assert answer.status_code == 302, answer.body
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]


def token_request(api, app: dict, **fields):
    body = {"client_id": app["client_id"], "client_secret": app["client_secret"], **fields}
    return api.call("POST", "/oauth/token", raw=urllib.parse.urlencode(body), headers=FORM)


def revoke(api, app: dict, token: str):
    body = {"client_id": app["client_id"], "client_secret": app["client_secret"], "token": token}
    return api.call("POST", "/oauth/revoke", raw=urllib.parse.urlencode(body), headers=FORM)


def redeem(api, app: dict, code: str, **fields):
    return token_request(api, app, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, **fields)


def test_a_person_signs_in_and_the_app_posts_with_its_token(oauth_api):
    alice = mirrored_user("alice")
    app = register(oauth_api)
    browser = Browser(oauth_api)

    page = browser.get(authorize_path(app, state="xyz"))
    form = read_form(page.body.decode())
    answer = browser.post_form(urllib.parse.urlsplit(form.action).path, form.filled(alice, PASSWORD))
    code = code_from(answer)
    token = redeem(oauth_api, app, code)

    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "form-action 'self' http://127.0.0.1:4000" in page.headers["Content-Security-Policy"]
    assert [i["name"] for i in form.inputs if i.get("type") != "hidden"] == ["username", "password"]
    assert form.buttons == 1 and {"type": "password", "name": "password"}.items() <= form.inputs[-1].items()
    assert "state=xyz" in answer.headers["Location"]
    assert token.status == 200 and token.headers["Cache-Control"] == "no-store"
    assert set(token.body) == {"access_token", "token_type", "scope", "created_at"}
    assert token.body["token_type"] == "Bearer" and token.body["scope"] == "follow push read write"
    me = oauth_api.get("/api/v1/accounts/verify_credentials", token=token.body["access_token"])
    posted = oauth_api.post("/api/v1/statuses", {"status": "from an app"}, token=token.body["access_token"])
    assert me.body["username"] == "alice" and posted.status == 200


def test_the_trailing_slash_serves_the_same_page(oauth_api):
    app = register(oauth_api)
    path = authorize_path(app).replace("/oauth/authorize?", "/oauth/authorize/?")
    page = Browser(oauth_api).get(path)
    assert page.status_code == 200 and b'name="password" type="password"' in page.body


@pytest.mark.parametrize(
    ("redirect_uris", "accepted"),
    [
        ("urn:ietf:wg:oauth:2.0:oob", True),
        ("com.example.app:/oauth", True),
        ("elk://callback https://elk.example/callback", True),
        (["http://localhost:9999/cb", "http://[::1]/cb"], True),
        ("javascript:alert(1)", False),
        ("JavaScript://%0aalert(1)", False),
        ("data:text/html,hi", False),
        ("vbscript:msgbox", False),
        ("http://example.com/cb", False),
        ("https://example.com/cb#fragment", False),
        ("", False),
    ],
)
def test_which_redirect_uris_an_app_may_register(oauth_api, redirect_uris, accepted):
    reply = oauth_api.post("/api/v1/apps", {"client_name": "x", "redirect_uris": redirect_uris})
    assert (reply.status == 200) is accepted, reply.body
    if accepted:
        given = redirect_uris if isinstance(redirect_uris, list) else redirect_uris.split()
        assert reply.body["redirect_uris"] == given and reply.body["redirect_uri"] == "\n".join(given)
        assert reply.body["scopes"] == ["read"] and reply.body["client_secret"] and reply.body["client_id"]
    else:
        assert reply.status == 422 and "error" in reply.body


def test_apps_register_from_a_form_and_from_multipart(oauth_api):
    form = oauth_api.call(
        "POST",
        "/api/v1/apps",
        raw="client_name=Form&redirect_uris=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob"
        "&scopes=read+write&website=https%3A%2F%2Fapp.example",
        headers=FORM,
    )
    boundary = "b0undary"
    multipart = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in {"client_name": "Multi", "redirect_uris": REDIRECT}.items()
        )
        + f"--{boundary}--\r\n"
    )
    multi = oauth_api.call(
        "POST", "/api/v1/apps", raw=multipart, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert (
        form.status == 200
        and form.body["scopes"] == ["read", "write"]
        and form.body["website"] == "https://app.example"
    )
    assert multi.status == 200 and multi.body["redirect_uris"] == [REDIRECT]


def test_verify_app_credentials_with_a_client_credentials_token(oauth_api):
    app = register(oauth_api)
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    token = oauth_api.call(
        "POST",
        "/oauth/token",
        raw="grant_type=client_credentials&scope=read",
        headers={**FORM, "Authorization": f"Basic {basic}"},
    )
    verified = oauth_api.get("/api/v1/apps/verify_credentials", token=token.body["access_token"])
    as_user = oauth_api.get("/api/v1/timelines/home", token=token.body["access_token"])
    assert token.status == 200 and token.body["scope"] == "read"
    assert verified.status == 200 and verified.body["name"] == "Test app" and "client_secret" not in verified.body
    assert as_user.status == 401


def test_a_wrong_redirect_uri_is_shown_on_the_page_and_never_followed(oauth_api):
    app = register(oauth_api)
    page = Browser(oauth_api).get(authorize_path(app, redirect_uri="https://evil.example/steal"))
    assert page.status_code == 400 and "Location" not in page.headers
    assert b"redirect_uri is not one the app registered" in page.body


def test_a_scope_beyond_the_apps_is_refused_on_the_page(oauth_api):
    app = register(oauth_api, scopes="read")
    page = Browser(oauth_api).get(authorize_path(app, scope="read write"))
    assert page.status_code == 400 and b"beyond those it registered" in page.body


def test_a_code_is_good_once(oauth_api):
    app = register(oauth_api)
    code = code_from(sign_in(Browser(oauth_api), app, mirrored_user("alice")))
    first, second = redeem(oauth_api, app, code), redeem(oauth_api, app, code)
    assert first.status == 200
    assert second.status == 400 and second.body["error"] == "invalid_grant" and "error_description" in second.body


def test_a_code_issued_to_app_a_is_refused_to_app_b_and_spent(oauth_api):
    app_a, app_b = register(oauth_api, name="A"), register(oauth_api, name="B")
    code = code_from(sign_in(Browser(oauth_api), app_a, mirrored_user("alice")))
    stolen, afterwards = redeem(oauth_api, app_b, code), redeem(oauth_api, app_a, code)
    assert stolen.status == 400 and stolen.body["error"] == "invalid_grant"
    assert afterwards.status == 400


def test_pkce_s256_the_right_verifier_only(oauth_api):
    app = register(oauth_api)
    alice = mirrored_user("alice")
    verifier = secrets.token_urlsafe(48)
    challenge = {"code_challenge": pkce.challenge_of(verifier), "code_challenge_method": "S256"}
    wrong = redeem(
        oauth_api,
        app,
        code_from(sign_in(Browser(oauth_api), app, alice, **challenge)),
        code_verifier=secrets.token_urlsafe(48),
    )
    missing = redeem(oauth_api, app, code_from(sign_in(Browser(oauth_api), app, alice, **challenge)))
    right = redeem(
        oauth_api, app, code_from(sign_in(Browser(oauth_api), app, alice, **challenge)), code_verifier=verifier
    )
    plain = Browser(oauth_api).get(authorize_path(app, code_challenge=verifier[:43], code_challenge_method="plain"))
    assert (wrong.status, missing.status, right.status, plain.status_code) == (400, 400, 200, 400)


def test_a_read_token_cannot_post(oauth_api):
    app = register(oauth_api)
    code = code_from(sign_in(Browser(oauth_api), app, mirrored_user("alice"), scope="read"))
    token = redeem(oauth_api, app, code).body
    posted = oauth_api.post("/api/v1/statuses", {"status": "nope"}, token=token["access_token"])
    home = oauth_api.get("/api/v1/timelines/home", token=token["access_token"])
    assert token["scope"] == "read" and posted.status == 403 and home.status == 200


def test_a_granular_token_does_what_its_scopes_say(oauth_api):
    app = register(oauth_api, scopes="read write")
    code = code_from(sign_in(Browser(oauth_api), app, mirrored_user("alice"), scope="write:statuses read:accounts"))
    token = redeem(oauth_api, app, code).body["access_token"]
    posted = oauth_api.post("/api/v1/statuses", {"status": "granular"}, token=token)
    me = oauth_api.get("/api/v1/accounts/verify_credentials", token=token)
    home = oauth_api.get("/api/v1/timelines/home", token=token)
    assert (posted.status, me.status, home.status) == (200, 200, 403)


def test_a_profile_token_reads_its_own_account_and_nothing_else(oauth_api):
    app = register(oauth_api, scopes="profile")
    code = code_from(sign_in(Browser(oauth_api), app, mirrored_user("alice"), scope="profile"))
    token = redeem(oauth_api, app, code).body
    me = oauth_api.get("/api/v1/accounts/verify_credentials", token=token["access_token"])
    home = oauth_api.get("/api/v1/timelines/home", token=token["access_token"])
    posted = oauth_api.post("/api/v1/statuses", {"status": "no"}, token=token["access_token"])
    assert token["scope"] == "profile"
    assert (me.status, me.body["username"]) == (200, "alice")
    assert (home.status, posted.status) == (403, 403)


def test_each_token_is_revoked_alone_and_lifeboat_tokens_keep_working(oauth_api):
    alice = mirrored_user("alice")
    lifeboat_token = oauth_api.new_user("bob")
    first_app, second_app = register(oauth_api, name="one"), register(oauth_api, name="two")
    first = redeem(oauth_api, first_app, code_from(sign_in(Browser(oauth_api), first_app, alice))).body["access_token"]
    second = redeem(oauth_api, second_app, code_from(sign_in(Browser(oauth_api), second_app, alice))).body[
        "access_token"
    ]
    assert oauth_api.get("/api/v1/timelines/home", token=first).status == 200

    not_its_own = revoke(oauth_api, second_app, first)
    still = oauth_api.get("/api/v1/timelines/home", token=first).status
    revoked = revoke(oauth_api, first_app, first)

    assert not_its_own.status == 200 and still == 200
    assert revoked.status == 200 and revoked.body == {}
    assert oauth_api.get("/api/v1/timelines/home", token=first).status == 401
    assert oauth_api.get("/api/v1/timelines/home", token=second).status == 200
    assert oauth_api.get("/api/v1/timelines/home", token=lifeboat_token).status == 200


def test_repeated_wrong_passwords_are_throttled_then_even_the_right_one(oauth_api):
    alice = mirrored_user("alice")
    app = register(oauth_api)
    wrong = [sign_in(Browser(oauth_api), app, alice, "guess").status_code for _ in range(5)]
    right = sign_in(Browser(oauth_api), app, alice)
    other_user = sign_in(Browser(oauth_api), app, mirrored_user("carol"))
    assert wrong == [401] * 5
    assert right.status_code == 429 and b"Too many failed sign-ins" in right.body
    assert other_user.status_code == 302


def test_a_suspended_account_cannot_sign_in(oauth_api):
    app = register(oauth_api)
    refused = sign_in(Browser(oauth_api), app, mirrored_user("mallory", suspended=True))
    assert refused.status_code == 401 and "Location" not in refused.headers


def test_a_form_without_its_cookie_is_refused(oauth_api):
    app = register(oauth_api)
    browser = Browser(oauth_api)
    form = read_form(browser.get(authorize_path(app)).body.decode())
    browser.cookie = None
    forged = browser.post_form("/oauth/authorize", form.filled(mirrored_user("alice"), PASSWORD))
    assert forged.status_code == 403 and "Location" not in forged.headers


def test_a_form_whose_request_was_changed_is_refused(oauth_api):
    app = register(oauth_api, scopes="read write")
    browser = Browser(oauth_api)
    form = read_form(browser.get(authorize_path(app, scope="read")).body.decode())
    widened = {**form.filled(mirrored_user("alice"), PASSWORD), "scope": "read write"}
    assert browser.post_form("/oauth/authorize", widened).status_code == 403


def test_a_sign_in_code_from_an_admin_works_once(oauth_api):
    oauth_api.new_user("dave")  # a Lifeboat user: no password anywhere
    issued = oauth_api.post("/admin/users/dave/sign-in-codes", token=ADMIN_TOKEN)
    app = register(oauth_api)
    first = sign_in(Browser(oauth_api), app, "dave", issued.body["code"])
    again = sign_in(Browser(oauth_api), app, "dave", issued.body["code"])
    assert issued.status == 201 and issued.headers["Cache-Control"] == "no-store"
    assert set(issued.body) == {"username", "code", "expires_at"}
    assert redeem(oauth_api, app, code_from(first)).status == 200
    assert again.status_code == 401


def test_oob_shows_the_code_on_a_page(oauth_api):
    app = register(oauth_api, redirect_uris="urn:ietf:wg:oauth:2.0:oob")
    answer = sign_in(Browser(oauth_api), app, mirrored_user("alice"), redirect_uri="urn:ietf:wg:oauth:2.0:oob")
    code = answer.body.decode().split('<code id="code">')[1].split("</code>")[0]
    token = token_request(
        oauth_api, app, grant_type="authorization_code", code=code, redirect_uri="urn:ietf:wg:oauth:2.0:oob"
    )
    assert answer.status_code == 200 and token.status == 200


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({"grant_type": "password", "username": "a", "password": "b"}, 400, "unsupported_grant_type"),
        ({}, 400, "invalid_request"),
        ({"grant_type": "authorization_code"}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "scope": "admin:read"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": "write"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "client_secret": "wrong"}, 401, "invalid_client"),
    ],
)
def test_token_errors_have_rfc_6749_shapes(oauth_api, fields, status, error):
    app = register(oauth_api, scopes="read")
    reply = token_request(oauth_api, app, **fields)
    assert (reply.status, reply.body["error"]) == (status, error), reply.body
    assert isinstance(reply.body["error_description"], str)


def test_the_token_endpoint_takes_json_too(oauth_api):
    app = register(oauth_api)
    body = {"grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"]}
    reply = oauth_api.call("POST", "/oauth/token", raw=json.dumps(body))
    assert reply.status == 200 and reply.body["scope"] == "read"


def test_the_authorization_server_metadata(oauth_api):
    reply = oauth_api.get("/.well-known/oauth-authorization-server")
    assert reply.status == 200 and reply.body["code_challenge_methods_supported"] == ["S256"]
    assert reply.body["authorization_endpoint"] == "http://127.0.0.1:8000/oauth/authorize"
    assert "password" not in reply.body["grant_types_supported"]


def test_a_suspension_stops_the_accounts_oauth_tokens(oauth_api):
    app = register(oauth_api)
    token = redeem(oauth_api, app, code_from(sign_in(Browser(oauth_api), app, mirrored_user("erin")))).body
    mirrored_user("erin", suspended=True)  # the primary suspends her; the mirror brings it
    assert oauth_api.get("/api/v1/timelines/home", token=token["access_token"]).status == 401
