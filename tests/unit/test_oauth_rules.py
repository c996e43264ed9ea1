"""The OAuth server's pure rules: scopes, redirect URIs, PKCE, the CSRF
binding; and the service's time rules on a fake clock and fake stores."""

from __future__ import annotations

import secrets
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.accounts.store import User
from chalicelib.errors import OAuthClientRefused, OAuthRefused, ValidationFailed
from chalicelib.oauth import csrf, pkce, redirects, scopes
from chalicelib.oauth.service import OAuthServer, SignInPolicy
from devtools.fakes.oauth import InMemoryOAuthStore
from tests.oauth_forms import read_form


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        ({"read"}, "read:statuses", True),
        ({"read:statuses"}, "read:statuses", True),
        ({"read:accounts"}, "read:statuses", False),
        ({"write"}, "read:statuses", False),
        ({"follow"}, "write:follows", True),
        ({"follow"}, "write:statuses", False),
        ({"write"}, "write:follows", True),
        ({"read", "write", "follow"}, "write", True),
        ({"write:statuses"}, "write", False),
        ({"push"}, "read", False),
        ({"profile"}, "profile", True),
        ({"read"}, "profile", True),
        ({"read:accounts"}, "profile", True),
        ({"read:statuses"}, "profile", False),
        ({"write", "follow"}, "profile", False),
        ({"profile"}, "read:accounts", False),
        ({"profile"}, "read", False),
    ],
)
def test_which_granted_scopes_cover_a_route(granted, required, allowed):
    assert scopes.covers(frozenset(granted), required) is allowed


def test_scopes_default_to_read_and_unknown_ones_are_refused():
    assert scopes.parse(None) == scopes.parse("  ") == {"read"}
    assert scopes.parse("read write:statuses push") == {"read", "write:statuses", "push"}
    assert scopes.parse("read+write+follow") == {"read", "write", "follow"}
    with pytest.raises(ValidationFailed):
        scopes.parse("read admin:write")


_SCHEME_CASES = st.sampled_from(["javascript", "data", "vbscript", "file"]).flatmap(
    lambda word: st.tuples(*(st.sampled_from([ch.lower(), ch.upper()]) for ch in word)).map("".join)
)


@given(scheme=_SCHEME_CASES, rest=st.text(min_size=1, max_size=40).filter(lambda t: "\n" not in t))
def test_script_and_local_schemes_are_refused_in_any_case(scheme, rest):
    with pytest.raises(ValidationFailed):
        redirects.validate(f"{scheme}:{rest}")


_HOST = st.from_regex(r"[a-z][a-z0-9-]{0,20}\.(example|test|org)", fullmatch=True)
_PATH = st.from_regex(r"(/[A-Za-z0-9._~-]{0,12}){0,3}", fullmatch=True)
_QUERY = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.text(max_size=10), max_size=3)


@given(host=_HOST, path=_PATH, query=_QUERY, state=st.none() | st.text(max_size=30))
def test_https_uris_are_accepted_and_the_code_is_added_to_their_query(host, path, query, state):
    uri = f"https://{host}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    assert redirects.validate(uri) == uri
    parts = urllib.parse.urlsplit(redirects.with_code(uri, "the-code", state))
    sent = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", host, path)
    assert sent["code"] == ["the-code"] and sent.get("state") == ([state] if state is not None else None)
    assert all(sent[name][0] == value for name, value in query.items() if name not in ("code", "state"))


@given(host=_HOST, path=_PATH)
def test_plain_http_is_refused_off_loopback(host, path):
    with pytest.raises(ValidationFailed):
        redirects.validate(f"http://{host}{path}")


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "http://[::1]:1/",
        "elk://cb",
        "com.example.app:/oauth",
        redirects.OOB,
    ],
)
def test_loopback_native_and_oob_uris_are_accepted(uri):
    assert redirects.validate(uri) == uri


def test_pkce_s256_matches_rfc_7636_appendix_b():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.verifies("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", verifier)
    assert not pkce.verifies("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", verifier[:-1] + "l")
    assert not pkce.verifies("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None)


def test_the_csrf_token_binds_the_request_and_the_nonce():
    nonce, bound = csrf.new_nonce(), {"client_id": "a", "scope": "read"}
    token = csrf.token_for(nonce, bound)
    assert csrf.verifies(nonce, bound, token)
    assert not csrf.verifies(nonce, {**bound, "scope": "read write"}, token)
    assert not csrf.verifies(csrf.new_nonce(), bound, token)
    assert not csrf.verifies(None, bound, token)
    assert csrf.nonce_from(f"other=1; {csrf.COOKIE}={nonce}") == nonce
    assert csrf.nonce_from(f"{csrf.COOKIE}=short") is None


# -- the service on a fake clock -----------------------------------------------------


class Users:
    def get(self, username):
        return User(username, "2026-01-01", None, None) if username in ("alice", "bob") else None


class Mirrored:
    def __init__(self, password_hash):
        self._hash = password_hash

    def suspended(self, username):
        return False

    def password_hash(self, username):
        return self._hash


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def server():
    import bcrypt

    clock = Clock()
    mirrored = Mirrored(bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode())
    forgotten = []
    oauth = OAuthServer(
        InMemoryOAuthStore(),
        Users(),
        lambda: mirrored,
        forgotten.append,
        "https://lifeboat.example",
        SignInPolicy(failures_per_username=2),
        now=clock,
    )
    oauth.clock, oauth.forgotten = clock, forgotten
    return oauth


def register(server, redirect="https://app.example/cb"):
    return server.register_app({"client_name": ["App"], "redirect_uris": [redirect], "scopes": ["read write"]})


def code_for(server, app, username="alice", password="secret", **extra):  # noqa: S107 - a test password
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uri"], **extra}
    page = server.authorize_page(query, None)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    form = read_form(page.body).filled(username, password)
    answer = server.authorize({name: [value] for name, value in form.items()}, cookie, "192.0.2.1")
    assert answer.status == 302, answer.body
    return urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)["code"][0]


def redeem(server, app, code, **extra):
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": app["redirect_uri"],
        **extra,
    }
    return server.token({name: [value] for name, value in fields.items()}, None)


def test_a_code_expires_after_sixty_seconds(server):
    app = register(server)
    fresh, stale = code_for(server, app), code_for(server, app)
    assert redeem(server, app, fresh)["scope"] == "read"
    server.clock.now += 60
    with pytest.raises(OAuthRefused) as refused:
        redeem(server, app, stale)
    assert refused.value.code == "invalid_grant"


def test_a_sign_in_code_expires_with_its_ttl(server):
    issued = server.issue_sign_in_code("bob")
    app = register(server)
    server.clock.now += SignInPolicy().code_ttl_seconds
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uri"]}
    page = server.authorize_page(query, None)
    form = read_form(page.body).filled("bob", issued["code"])
    answer = server.authorize({k: [v] for k, v in form.items()}, page.headers["Set-Cookie"].split(";")[0], "x")
    assert answer.status == 401


def test_failures_are_forgotten_when_their_window_ends(server):
    app = register(server)
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": app["redirect_uri"]}
    page = server.authorize_page(query, None)
    cookie = page.headers["Set-Cookie"].split(";")[0]

    def attempt(password):
        form = read_form(page.body).filled("alice", password)
        return server.authorize({k: [v] for k, v in form.items()}, cookie, "192.0.2.1").status

    statuses = [attempt("wrong"), attempt("wrong"), attempt("secret")]
    server.clock.now += SignInPolicy().failure_window_seconds
    assert statuses == [401, 401, 429] and attempt("secret") == 302


def test_revoking_forgets_the_token_in_this_containers_cache(server):
    app = register(server)
    token = redeem(server, app, code_for(server, app))["access_token"]
    fields = {"token": [token], "client_id": [app["client_id"]], "client_secret": [app["client_secret"]]}
    assert server.revoke(fields, None) == {} and len(server.forgotten) == 1
    assert server.revoke(fields, None) == {} and len(server.forgotten) == 1


def test_a_wrong_client_secret_is_invalid_client(server):
    app = register(server)
    with pytest.raises(OAuthClientRefused):
        server.token(
            {
                "grant_type": ["client_credentials"],
                "client_id": [app["client_id"]],
                "client_secret": [secrets.token_urlsafe(32)],
            },
            None,
        )
