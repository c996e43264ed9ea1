"""Authentication and user administration: who a bearer token belongs to
(with a per-container cache that outlives a DynamoDB outage), the admin
token, and creating users and rotating their tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.accounts.kept_tokens import PrimaryCredential
from chalicelib.accounts.store import PRIMARY_SOURCE, Grant, User
from chalicelib.accounts.tokens import bearer_token, hashes_match, new_token, token_hash
from chalicelib.core.models import is_username, validate_username
from chalicelib.errors import BadRequest, Forbidden, NotFound, StoreUnavailable, Unauthorized, ValidationFailed
from chalicelib.oauth import scopes


class Users(Protocol):
    """What Accounts needs from a user store (accounts/store.py, or a fake)."""

    def create(self, user: User) -> None: ...

    def get(self, username: str) -> User | None: ...

    def grant_for(self, hashed_token: str) -> Grant | None: ...

    def replace_token(self, user: User, new_hash: str | None, issued_at: str | None) -> None: ...


class TokenCache:
    """Recently verified token hashes and their grants, per container.

    Fresh entries save a GetItem per request; stale ones still let a known
    user post while DynamoDB is down, which is when the S3 spool matters.
    The price: a revoked token keeps working on a warm container for up to
    `fresh_seconds` (and `stale_seconds` during a DynamoDB outage), counted
    from the last successful read: only `Accounts.authenticate`'s read of
    DynamoDB puts an entry, never a hit on the cache itself.
    """

    def __init__(self, fresh_seconds: float, stale_seconds: float, monotonic=time.monotonic) -> None:
        self._fresh = fresh_seconds
        self._stale = stale_seconds
        self._now = monotonic
        self._entries: dict[str, tuple[Grant, float]] = {}
        self._lock = threading.Lock()

    def get(self, hashed_token: str, *, allow_stale: bool = False) -> Grant | None:
        with self._lock:
            grant, verified_at = self._entries.get(hashed_token, (None, float("-inf")))
        age = self._now() - verified_at
        return grant if age <= (self._stale if allow_stale else self._fresh) else None

    def put(self, hashed_token: str, grant: Grant) -> None:
        with self._lock:
            self._entries[hashed_token] = (grant, self._now())

    def forget(self, hashed_token: str | None) -> None:
        with self._lock:
            self._entries.pop(hashed_token, None)


@dataclass(frozen=True)
class Author:
    """Who a write is by, and the primary's own token it was made with
    (a mirrored credential), which the replay may post with; None for a
    Lifeboat token."""

    username: str
    primary: PrimaryCredential | None = None


class Accounts:
    """Authentication and user administration."""

    def __init__(self, users: Users, admin_token_sha256: str, clock: Callable[[], str], cache: TokenCache) -> None:
        self._users = users
        self._admin_hash = admin_token_sha256
        self._clock = clock
        self._cache = cache

    def authenticate(self, authorization: str | None) -> str:
        """The username a bearer token belongs to, or Unauthorized.

        Raises StoreUnavailable only if DynamoDB is down and the token was
        not verified by this container within the stale window.
        """
        return self.grant(authorization).username

    def require_scope(self, authorization: str | None, scope: str) -> Grant:
        """The token's grant if it carries `scope`; else Forbidden, as
        Mastodon answers a token without the scope (Unauthorized first, for
        no token or a bad one)."""
        grant = self.grant(authorization)
        if not scopes.covers(grant.scopes, scope):
            raise Forbidden("This action is outside the authorized scopes", code="insufficient_scope")
        return grant

    def author(self, authorization: str | None) -> Author:
        """`authenticate` for a write: the username, and the bearer token
        itself if the primary issued it."""
        token = bearer_token(authorization)
        hashed = token_hash(token)
        grant = self._grant(hashed)
        return Author(grant.username, PrimaryCredential(token, hashed) if grant.source == PRIMARY_SOURCE else None)

    def grant(self, authorization: str | None) -> Grant:
        return self._grant(token_hash(bearer_token(authorization)))

    def _grant(self, hashed: str) -> Grant:
        grant = self._cache.get(hashed)
        if grant is not None:
            return grant
        try:
            grant = self._users.grant_for(hashed)
        except StoreUnavailable:
            # Not re-stamped: only a successful read proves the token is
            # still live, so the stale window runs out however often it is used.
            grant = self._cache.get(hashed, allow_stale=True)
            if grant is None:
                raise
            return grant
        if grant is None:
            self._cache.forget(hashed)
            raise Unauthorized("the token is invalid or revoked", code="invalid_token")
        self._cache.put(hashed, grant)
        return grant

    def forget_token(self, hashed_token: str) -> None:
        """Drop a revoked token from this container's cache (others keep it
        for up to AUTH_CACHE_SECONDS, as with a rotated token)."""
        self._cache.forget(hashed_token)

    def require_admin(self, authorization: str | None) -> None:
        given = token_hash(bearer_token(authorization))
        # An unset admin token disables the admin API rather than opening it.
        if not self._admin_hash or not hashes_match(given, self._admin_hash):
            raise Unauthorized("the admin token is required", code="invalid_token")

    def create_user(self, body: object) -> tuple[User, str]:
        """Create a user from a {"username": ...} request; the token is
        returned here once and never again."""
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object", code="invalid_body")
        unknown = sorted(set(body) - {"username"})
        if unknown:
            raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field")
        username = validate_username(body.get("username"))
        token = new_token()
        now = self._clock()
        self._users.create(User(username, now, token_hash(token), now))
        return self.get_user(username), token

    def get_user(self, username: str) -> User:
        # Checked before the read: DynamoDB refuses keys over 2,048 bytes
        # with a ValidationException, which would be a 500.
        user = self._users.get(username) if is_username(username) else None
        if user is None:
            raise NotFound(f"no user {username!r}", code="user_not_found")
        return user

    def rotate_token(self, username: str) -> str:
        token = new_token()
        user = self.get_user(username)
        self._users.replace_token(user, token_hash(token), self._clock())
        self._cache.forget(user.token_hash)
        return token

    def revoke_token(self, username: str) -> None:
        user = self.get_user(username)
        self._users.replace_token(user, None, None)
        self._cache.forget(user.token_hash)
