"""The authorization server, as Mastodon's: apps register, a person signs
in on the authorize page, the app trades the code for a token, and may
revoke it. Every secret (client secret, code, token, sign-in code) is shown
once and stored as its SHA-256 digest."""

from __future__ import annotations

import base64
import binascii
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.accounts import rate_limits
from chalicelib.accounts.store import User
from chalicelib.accounts.tokens import bearer_token, hashes_match, token_hash
from chalicelib.core.models import is_username
from chalicelib.errors import NotFound, OAuthClientRefused, OAuthRefused, Unauthorized, ValidationFailed
from chalicelib.oauth import apps, codes, csrf, pages, passwords, pkce, redirects, scopes
from chalicelib.oauth.apps import App
from chalicelib.oauth.codes import AuthorizationCode, SignInCode
from chalicelib.oauth.pages import Page
from chalicelib.oauth.tokens import AccessToken, new_access_token

MAX_STATE_CHARS = 2000
_AUTHORIZE_PATH = "/oauth/authorize"


class Store(Protocol):
    """oauth/store.py, or devtools/fakes/oauth.py."""

    def put_app(self, app: App) -> None: ...
    def app(self, client_id: str) -> App | None: ...
    def put_code(self, code: AuthorizationCode) -> None: ...
    def take_code(self, code_sha256: str) -> AuthorizationCode | None: ...
    def put_token(self, token: AccessToken) -> None: ...
    def token(self, token_sha256: str) -> AccessToken | None: ...
    def revoke_token(self, token_sha256: str, client_id: str) -> bool: ...
    def put_sign_in_code(self, code: SignInCode) -> None: ...
    def take_sign_in_code(self, code_sha256: str, username: str) -> SignInCode | None: ...
    def failures(self, charges: list[rate_limits.Charge]) -> list[int]: ...
    def count_failure(self, charges: list[rate_limits.Charge]) -> None: ...


class Users(Protocol):
    def get(self, username: str) -> User | None: ...


class MirroredPasswords(Protocol):
    """The mirror's accounts (mirror/store.py): suspension and password hash."""

    def suspended(self, username: str) -> bool: ...
    def password_hash(self, username: str) -> str | None: ...


@dataclass(frozen=True)
class SignInPolicy:
    code_ttl_seconds: int = 86400
    failures_per_username: int = 5
    failures_per_address: int = 30
    failure_window_seconds: int = 900


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request: what the form is bound to."""

    app: App
    redirect_uri: str
    scopes: frozenset[str]
    state: str | None
    code_challenge: str | None

    def bound(self) -> dict[str, str]:
        """The form's hidden fields (the CSRF token is an HMAC of these)."""
        fields = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scopes.text(self.scopes),
        }
        if self.state is not None:
            fields["state"] = self.state
        if self.code_challenge is not None:
            fields |= {"code_challenge": self.code_challenge, "code_challenge_method": pkce.S256}
        return fields


class Problem(Exception):
    """An authorization request that cannot be served: shown on the page,
    never sent to a redirect URI that was not validated. An unknown client
    is a 401, as Doorkeeper (Mastodon's OAuth server) answers it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class OAuthServer:
    def __init__(
        self,
        store: Store,
        users: Users,
        mirrored: Callable[[], MirroredPasswords],
        forget_token: Callable[[str], None],
        base_url: str,
        policy: SignInPolicy,
        now: Callable[[], float] = time.time,
        clock: Callable[[], str] | None = None,
    ) -> None:
        self._store = store
        self._users = users
        self._mirrored = mirrored
        self._forget_token = forget_token
        self._base_url = base_url
        self._policy = policy
        self._now = now
        self._clock = clock or (lambda: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self._now())))

    # -- apps -----------------------------------------------------------------

    def register_app(self, fields: dict[str, list]) -> dict:
        secret = apps.new_client_secret()
        app = apps.registration(fields, self._clock(), token_hash(secret))
        self._store.put_app(app)
        return app.credential_entity(secret)

    def verify_app(self, authorization: str | None) -> dict:
        """The Application entity of the app a token (a user's or its own) was issued to."""
        token = self._store.token(token_hash(bearer_token(authorization)))
        app = self._store.app(token.client_id) if token is not None else None
        if app is None:
            raise Unauthorized("The access token is invalid", code="invalid_token")
        return app.entity()

    def metadata(self) -> dict:
        base = self._base_url
        return {
            "issuer": base + "/",
            "service_documentation": "https://docs.joinmastodon.org/",
            "authorization_endpoint": base + _AUTHORIZE_PATH,
            "token_endpoint": base + "/oauth/token",
            "revocation_endpoint": base + "/oauth/revoke",
            "app_registration_endpoint": base + "/api/v1/apps",
            "scopes_supported": sorted(scopes.KNOWN, key=lambda scope: (":" in scope, scope)),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": [pkce.S256],
        }

    # -- the authorize page -----------------------------------------------------

    def authorize_page(self, params: dict[str, str], cookie_header: str | None) -> Page:
        try:
            request = self._authorization_request(params)
        except Problem as problem:
            return Page(problem.status, pages.problem(str(problem)), pages.headers())
        nonce = csrf.nonce_from(cookie_header) or csrf.new_nonce()
        headers = {**pages.headers(request.redirect_uri), "Set-Cookie": self._cookie(nonce)}
        return Page(200, self._form(request, nonce), headers)

    def authorize(self, fields: dict[str, list], cookie_header: str | None, client_address: str) -> Page:
        """The form's answer: a person's username and password (or sign-in code)."""
        form = _single_values(fields)
        try:
            request = self._authorization_request(form)
        except Problem as problem:
            return Page(problem.status, pages.problem(str(problem)), pages.headers())
        nonce = csrf.nonce_from(cookie_header)
        if not csrf.verifies(nonce, request.bound(), form.get(csrf.FIELD)):
            return Page(403, pages.problem("The sign-in form expired or was not sent from this page."), pages.headers())
        username = form.get("username", "").strip().removeprefix("@")
        if "@" in username:  # user@domain: the domain is ours
            username = username.partition("@")[0]
        secret = form.get("password", "")
        charges = self._failure_charges(username, client_address)
        counts = self._store.failures(charges)
        limits = (self._policy.failures_per_username, self._policy.failures_per_address)
        if any(limit and count >= limit for count, limit in zip(counts, limits, strict=True)):
            minutes = -(-self._policy.failure_window_seconds // 60)
            return self._form_again(
                request, nonce, username, 429, f"Too many failed sign-ins. Try again in {minutes} minutes."
            )
        if not self._signs_in(username, secret):
            self._store.count_failure(charges)
            return self._form_again(request, nonce, username, 401, "Invalid username or password.")
        return self._issue_code(request, username)

    def _issue_code(self, request: AuthorizationRequest, username: str) -> Page:
        code = codes.new_authorization_code()
        expires_at = int(self._now()) + codes.AUTHORIZATION_CODE_SECONDS
        bound = AuthorizationCode(
            token_hash(code),
            request.app.client_id,
            request.redirect_uri,
            request.scopes,
            username,
            request.code_challenge,
            expires_at,
        )
        self._store.put_code(bound)
        if request.redirect_uri == redirects.OOB:
            return Page(200, pages.out_of_band_code(request.app.name, code), pages.headers())
        location = redirects.with_code(request.redirect_uri, code, request.state)
        return Page(302, "", {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    def _signs_in(self, username: str, secret: str) -> bool:
        """Whether `secret` is the user's password or an unused sign-in code
        of theirs; never for a suspended account."""
        user = self._users.get(username) if is_username(username) else None
        if user is None or not secret:
            passwords.matches(secret, None)  # the same time as a wrong password
            return False
        mirrored = self._mirrored()
        if codes.is_sign_in_code(secret):
            taken = self._store.take_sign_in_code(token_hash(secret), user.username)
            valid = taken is not None and taken.expires_at > self._now()
        else:
            valid = passwords.matches(secret, mirrored.password_hash(user.username))
        return valid and not mirrored.suspended(user.username)

    def _failure_charges(self, username: str, client_address: str) -> list[rate_limits.Charge]:
        window = self._policy.failure_window_seconds
        per_user = rate_limits.RateLimit(
            "failures", self._policy.failures_per_username, "too_many_sign_ins", "failed sign-ins", window
        )
        per_address = rate_limits.RateLimit(
            "failures", self._policy.failures_per_address, "too_many_sign_ins", "failed sign-ins", window
        )
        now = int(self._now())
        # Hashed: the keys hold no username or address as typed (nor any size of it).
        return [
            rate_limits.Charge(per_user, f"signin#user#{token_hash(username.lower())}", now),
            rate_limits.Charge(per_address, f"signin#addr#{token_hash(client_address)}", now),
        ]

    def _authorization_request(self, params: dict[str, str]) -> AuthorizationRequest:
        client_id = params.get("client_id") or ""
        app = self._store.app(client_id) if 0 < len(client_id) <= 128 else None
        if app is None:
            raise Problem("The app is not registered here (unknown client_id).", 401)
        redirect_uri = params.get("redirect_uri") or None
        if redirect_uri is None and len(app.redirect_uris) == 1:
            redirect_uri = app.redirect_uris[0]
        if redirect_uri not in app.redirect_uris:
            raise Problem("The redirect_uri is not one the app registered.")
        if params.get("response_type") != "code":
            raise Problem("Only response_type=code is supported.")
        try:
            asked = scopes.parse(params.get("scope") or params.get("scopes"))
        except ValidationFailed as unknown:
            raise Problem(unknown.message) from unknown
        if not scopes.within(asked, app.scopes):
            raise Problem("The app asks for scopes beyond those it registered.")
        challenge = params.get("code_challenge") or None
        s256 = params.get("code_challenge_method") == pkce.S256
        if challenge is not None and not (s256 and pkce.is_challenge(challenge)):
            raise Problem("code_challenge_method must be S256, with a 43-character challenge.")
        state = params.get("state")
        if state is not None and len(state) > MAX_STATE_CHARS:
            raise Problem("The state parameter is too long.")
        return AuthorizationRequest(app, redirect_uri, asked, state, challenge)

    def _form(self, request: AuthorizationRequest, nonce: str, username: str = "", error: str | None = None) -> str:
        hidden = {**request.bound(), csrf.FIELD: csrf.token_for(nonce, request.bound())}
        return pages.sign_in_form(
            self._base_url + _AUTHORIZE_PATH, request.app.name, scopes.text(request.scopes), hidden, username, error
        )

    def _form_again(self, request: AuthorizationRequest, nonce: str, username: str, status: int, error: str) -> Page:
        return Page(status, self._form(request, nonce, username, error), pages.headers(request.redirect_uri))

    def _cookie(self, nonce: str) -> str:
        path = urllib.parse.urlsplit(self._base_url).path.rstrip("/") + _AUTHORIZE_PATH
        return csrf.set_cookie(nonce, path, secure=self._base_url.startswith("https://"))

    # -- tokens -----------------------------------------------------------------

    def token(self, fields: dict[str, list], authorization: str | None) -> dict:
        form = _single_values(fields)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthRefused("grant_type is required", code="invalid_request")
        if grant_type not in ("authorization_code", "client_credentials"):
            raise OAuthRefused(f"the {grant_type[:50]} grant is not supported", code="unsupported_grant_type")
        app = self._client(form, authorization)
        if grant_type == "client_credentials":
            try:
                asked = scopes.parse(form.get("scope"))
            except ValidationFailed as unknown:
                raise OAuthRefused(unknown.message, code="invalid_scope") from unknown
            if not scopes.within(asked, app.scopes):
                raise OAuthRefused("the scope asked for is beyond the app's", code="invalid_scope")
            return self._mint(app, asked, None)
        code = self._redeemed_code(app, form)
        return self._mint(app, code.scopes, code.username)

    def _redeemed_code(self, app: App, form: dict[str, str]) -> AuthorizationCode:
        given = form.get("code")
        if not given:
            raise OAuthRefused("code is required", code="invalid_request")
        # Taken (deleted) before any check: a code that fails once is spent.
        code = self._store.take_code(token_hash(given))
        refused = OAuthRefused(
            "The provided authorization grant is invalid, expired, revoked, does not match the "
            "redirection URI used in the authorization request, or was issued to another client.",
            code="invalid_grant",
        )
        if code is None or code.expires_at <= self._now() or code.client_id != app.client_id:
            raise refused
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is None and len(app.redirect_uris) != 1:
            raise OAuthRefused("redirect_uri is required", code="invalid_request")
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise refused
        verifier = form.get("code_verifier")
        if code.code_challenge is not None and not pkce.verifies(code.code_challenge, verifier):
            raise refused
        if code.code_challenge is None and verifier is not None:
            raise refused
        return code

    def _mint(self, app: App, granted: frozenset[str], username: str | None) -> dict:
        token = new_access_token()
        created_at = int(self._now())
        self._store.put_token(AccessToken(token_hash(token), app.client_id, granted, created_at, username))
        return {"access_token": token, "token_type": "Bearer", "scope": scopes.text(granted), "created_at": created_at}

    def revoke(self, fields: dict[str, list], authorization: str | None) -> dict:
        """RFC 7009: the token is revoked if it is this client's; the answer
        is the same either way."""
        form = _single_values(fields)
        app = self._client(form, authorization)
        given = form.get("token")
        if not given:
            raise OAuthRefused("token is required", code="invalid_request")
        hashed = token_hash(given)
        if self._store.revoke_token(hashed, app.client_id):
            self._forget_token(hashed)
        return {}

    def _client(self, form: dict[str, str], authorization: str | None) -> App:
        """The app authenticating itself, with HTTP Basic or in the body."""
        client_id, secret = _basic_credentials(authorization)
        if client_id is not None and form.get("client_id") not in (None, client_id):
            raise OAuthRefused("client_id differs between the header and the body", code="invalid_request")
        client_id = client_id if client_id is not None else form.get("client_id")
        secret = secret if secret is not None else form.get("client_secret")
        app = self._store.app(client_id) if client_id and len(client_id) <= 128 else None
        if app is None or not secret or not hashes_match(token_hash(secret), app.client_secret_sha256):
            raise OAuthClientRefused(
                "Client authentication failed due to unknown client, no client "
                "authentication included, or unsupported authentication method."
            )
        return app

    # -- sign-in codes (administration) -------------------------------------------

    def issue_sign_in_code(self, username: str) -> dict:
        user = self._users.get(username) if is_username(username) else None
        if user is None:
            raise NotFound(f"no user {username!r}", code="user_not_found")
        code = codes.new_sign_in_code()
        expires_at = int(self._now()) + self._policy.code_ttl_seconds
        self._store.put_sign_in_code(SignInCode(token_hash(code), user.username, expires_at))
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at))
        return {"username": user.username, "code": code, "expires_at": expires}


def _single_values(fields: dict[str, list]) -> dict[str, str]:
    """Each field's first value, if it is text (a JSON number or list is no
    OAuth parameter)."""
    return {name: values[0] for name, values in fields.items() if values and isinstance(values[0], str)}


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthClientRefused("the Basic credentials cannot be read") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthClientRefused("the Basic credentials cannot be read")
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
