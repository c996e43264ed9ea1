"""An in-memory stand-in for `OAuthStore` (chalicelib/oauth/store.py);
tests/functional/test_oauth_store_contract.py holds both to one behaviour.
Thread-safe, like a table."""

from __future__ import annotations

import threading

from chalicelib.accounts import rate_limits
from chalicelib.oauth.apps import App
from chalicelib.oauth.codes import AuthorizationCode, SignInCode
from chalicelib.oauth.tokens import AccessToken


class InMemoryOAuthStore:
    def __init__(self) -> None:
        self._apps: dict[str, App] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._sign_in_codes: dict[str, SignInCode] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def put_app(self, app: App) -> None:
        with self._lock:
            self._apps.setdefault(app.client_id, app)

    def app(self, client_id: str) -> App | None:
        return self._apps.get(client_id)

    def put_code(self, code: AuthorizationCode) -> None:
        with self._lock:
            self._codes[code.code_sha256] = code

    def take_code(self, code_sha256: str) -> AuthorizationCode | None:
        with self._lock:
            return self._codes.pop(code_sha256, None)

    def put_token(self, token: AccessToken) -> None:
        with self._lock:
            self._tokens[token.token_sha256] = token

    def token(self, token_sha256: str) -> AccessToken | None:
        return self._tokens.get(token_sha256)

    def revoke_token(self, token_sha256: str, client_id: str) -> bool:
        with self._lock:
            token = self._tokens.get(token_sha256)
            if token is None or token.client_id != client_id:
                return False
            del self._tokens[token_sha256]
            return True

    def put_sign_in_code(self, code: SignInCode) -> None:
        with self._lock:
            self._sign_in_codes[code.code_sha256] = code

    def take_sign_in_code(self, code_sha256: str, username: str) -> SignInCode | None:
        with self._lock:
            code = self._sign_in_codes.get(code_sha256)
            if code is None or code.username != username:
                return None
            return self._sign_in_codes.pop(code_sha256)

    def failures(self, charges: list[rate_limits.Charge]) -> list[int]:
        return [self._failures.get(_window(charge), 0) for charge in charges]

    def count_failure(self, charges: list[rate_limits.Charge]) -> None:
        with self._lock:
            for charge in charges:
                key = _window(charge)
                self._failures[key] = min(self._failures.get(key, 0) + 1, charge.limit.per_minute)


def _window(charge: rate_limits.Charge) -> str:
    return charge.key()["PK"]["S"]
