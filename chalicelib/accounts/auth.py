"""Users, their bearer tokens, and the admin token.

Tokens are 256 random bits, shown once, stored only as SHA-256 hashes (a
fast hash is enough: the input has far too much entropy to brute-force). A
token item keyed by its hash makes authentication one GetItem.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.core.models import is_username, validate_username
from chalicelib.errors import BadRequest, Conflict, NotFound, StoreUnavailable, Unauthorized, ValidationFailed

TOKEN_PREFIX = "lb_"  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    # The prefix lets secret scanners recognise a leaked Lifeboat token.
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an Authorization: Bearer <token> header is required", code="missing_token")
    return token.strip()


@dataclass(frozen=True)
class User:
    username: str
    created_at: str
    token_hash: str | None
    token_issued_at: str | None
    # Kept by the post transactions (create +1, delete -1).
    posts_count: int = 0
    last_post_id: str | None = None

    def to_public(self) -> dict:
        return {
            "username": self.username,
            "created_at": self.created_at,
            "token_active": self.token_hash is not None,
            "token_issued_at": self.token_issued_at,
        }


class UserStore:
    """DynamoDB adapter for users and their token hashes."""

    def __init__(self, client, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, user: User) -> None:
        """Raises Conflict if the username exists; user and token item are
        written together so a half-created user never exists."""
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": dynamo.to_item({"PK": f"USER#{user.username}", "SK": "PROFILE", **user.__dict__}),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            self._put_token(user.username, user.token_hash),
        ]
        try:
            dynamo.transact(self._client, items, "create user")
        except dynamo.TransactionCancelled as cancelled:
            raise Conflict(f"user {user.username!r} already exists", code="username_taken") from cancelled

    def get(self, username: str) -> User | None:
        with unavailable_as_domain_error("get user"):
            response = self._client.get_item(
                TableName=self._table, Key=dynamo.key(f"USER#{username}", "PROFILE"), ConsistentRead=True
            )
        if "Item" not in response:
            return None
        values = dynamo.from_item(response["Item"])
        return User(
            values["username"],
            values["created_at"],
            values.get("token_hash"),
            values.get("token_issued_at"),
            max(0, values.get("posts_count", 0)),
            values.get("last_post_id"),
        )

    def username_for(self, hashed_token: str) -> str | None:
        with unavailable_as_domain_error("authenticate"):
            response = self._client.get_item(TableName=self._table, Key=dynamo.key(f"TOKEN#{hashed_token}", "TOKEN"))
        return dynamo.from_item(response["Item"])["username"] if "Item" in response else None

    def replace_token(self, user: User, new_hash: str | None, issued_at: str | None) -> None:
        """Swap the user's token (None revokes it). Conditional on the token
        we read, so two concurrent rotations cannot both leave a live token."""
        if new_hash:
            update = "SET token_hash = :new, token_issued_at = :at"
            values = {":new": {"S": new_hash}, ":at": {"S": issued_at}}
        else:
            update, values = "REMOVE token_hash, token_issued_at", {}
        if user.token_hash:
            condition = "token_hash = :old"
            values[":old"] = {"S": user.token_hash}
        else:
            condition = "attribute_not_exists(token_hash)"
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": dynamo.key(f"USER#{user.username}", "PROFILE"),
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                }
            }
        ]
        if user.token_hash:
            items.append({"Delete": {"TableName": self._table, "Key": dynamo.key(f"TOKEN#{user.token_hash}", "TOKEN")}})
        if new_hash:
            items.append(self._put_token(user.username, new_hash))
        try:
            dynamo.transact(self._client, items, "replace token")
        except dynamo.TransactionCancelled as cancelled:
            raise Conflict("the token changed concurrently; try again", code="token_changed") from cancelled

    def _put_token(self, username: str, hashed_token: str) -> dict:
        return {
            "Put": {
                "TableName": self._table,
                "Item": dynamo.to_item({"PK": f"TOKEN#{hashed_token}", "SK": "TOKEN", "username": username}),
            }
        }


class TokenCache:
    """Recently verified token hashes, per container.

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
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, hashed_token: str, *, allow_stale: bool = False) -> str | None:
        with self._lock:
            username, verified_at = self._entries.get(hashed_token, (None, float("-inf")))
        age = self._now() - verified_at
        return username if age <= (self._stale if allow_stale else self._fresh) else None

    def put(self, hashed_token: str, username: str) -> None:
        with self._lock:
            self._entries[hashed_token] = (username, self._now())

    def forget(self, hashed_token: str | None) -> None:
        with self._lock:
            self._entries.pop(hashed_token, None)


class Accounts:
    """Authentication and user administration."""

    def __init__(self, users: UserStore, admin_token_sha256: str, clock, cache: TokenCache) -> None:
        self._users = users
        self._admin_hash = admin_token_sha256
        self._clock = clock
        self._cache = cache

    def authenticate(self, authorization: str | None) -> str:
        """The username a bearer token belongs to, or Unauthorized.

        Raises StoreUnavailable only if DynamoDB is down and the token was
        not verified by this container within the stale window.
        """
        hashed = token_hash(bearer_token(authorization))
        username = self._cache.get(hashed)
        if username is not None:
            return username
        try:
            username = self._users.username_for(hashed)
        except StoreUnavailable:
            # Not re-stamped: only a successful read proves the token is
            # still live, so the stale window runs out however often it is used.
            username = self._cache.get(hashed, allow_stale=True)
            if username is None:
                raise
            return username
        if username is None:
            self._cache.forget(hashed)
            raise Unauthorized("the token is invalid or revoked", code="invalid_token")
        self._cache.put(hashed, username)
        return username

    def require_admin(self, authorization: str | None) -> None:
        given = token_hash(bearer_token(authorization))
        # An unset admin token disables the admin API rather than opening it.
        if not self._admin_hash or not hmac.compare_digest(given, self._admin_hash):
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
