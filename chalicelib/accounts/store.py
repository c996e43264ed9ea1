"""Users and their token hashes in DynamoDB.

A token item keyed by its hash makes authentication one GetItem; the user
item and its token item are always written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.errors import Conflict

# What a bearer token may do. Lifeboat's own tokens carry no scopes and may
# do everything; tokens mirrored from the primary carry the primary's.
READ, WRITE, FOLLOW = "read", "write", "follow"
ALL_SCOPES = frozenset({READ, WRITE, FOLLOW})
LIFEBOAT_SOURCE = "lifeboat"
PRIMARY_SOURCE = "primary"


@dataclass(frozen=True)
class Grant:
    """Who a token belongs to, and what it may do."""

    username: str
    scopes: frozenset[str] = ALL_SCOPES
    source: str = LIFEBOAT_SOURCE


def grant_from_values(values: dict) -> Grant:
    scopes = values.get("scopes")
    return Grant(
        values["username"],
        frozenset(scopes.split()) if scopes is not None else ALL_SCOPES,
        values.get("source", LIFEBOAT_SOURCE),
    )


@dataclass(frozen=True)
class User:
    username: str
    created_at: str
    token_hash: str | None
    token_issued_at: str | None
    # Kept by the post transactions (create +1, delete -1).
    posts_count: int = 0
    last_post_id: str | None = None
    # A mirrored account the primary suspended: no sign-in, no posts shown.
    suspended: bool = False
    # A mirrored account's name on the primary; Lifeboat's own users have none.
    display_name: str | None = None

    def to_public(self) -> dict:
        return {
            "username": self.username,
            "created_at": self.created_at,
            "token_active": self.token_hash is not None,
            "token_issued_at": self.token_issued_at,
        }


class UserStore:
    """DynamoDB adapter for users and their token hashes. With
    `mirrored_accounts` (MIRROR_ENABLED), any account may be one the primary
    suspends, so Lifeboat's own tokens are checked against the suspension too."""

    def __init__(self, client, table_name: str, *, mirrored_accounts: bool = False) -> None:
        self._client = client
        self._table = table_name
        self._mirrored_accounts = mirrored_accounts

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
            response = self._client.get_item(TableName=self._table, Key=_profile_key(username), ConsistentRead=True)
        return _user_from_item(response["Item"]) if "Item" in response else None

    def get_many(self, usernames: list[str]) -> dict[str, User]:
        """Several users by name (consistent, as `get`): one BatchGetItem per
        100; unknown names are absent from the answer."""
        keys = [_profile_key(name) for name in dict.fromkeys(usernames)]
        users = map(_user_from_item, dynamo.batch_get(self._client, self._table, keys, "get users", consistent=True))
        return {user.username: user for user in users}

    def username_for(self, hashed_token: str) -> str | None:
        grant = self.grant_for(hashed_token)
        return grant.username if grant else None

    def grant_for(self, hashed_token: str) -> Grant | None:
        """The token's grant; None if it is unknown, or its account is one
        the primary has suspended (one more read on a cache miss: for tokens
        of mirrored accounts, the primary's and OAuth sign-ins, and with
        mirrored accounts for Lifeboat's own too, since an admin may have
        issued one to a mirrored account)."""
        with unavailable_as_domain_error("authenticate"):
            response = self._client.get_item(TableName=self._table, Key=dynamo.key(f"TOKEN#{hashed_token}", "TOKEN"))
        if "Item" not in response:
            return None
        grant = grant_from_values(dynamo.from_item(response["Item"]))
        checked = grant.source != LIFEBOAT_SOURCE or self._mirrored_accounts
        if checked and self._suspended(grant.username):
            return None
        return grant

    def _suspended(self, username: str) -> bool:
        with unavailable_as_domain_error("authenticate"):
            response = self._client.get_item(
                TableName=self._table,
                Key=dynamo.key(f"USER#{username}", "PROFILE"),
                ProjectionExpression="suspended",
            )
        return bool(response.get("Item", {}).get("suspended", {}).get("BOOL", False))

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


def _profile_key(username: str) -> dict:
    return dynamo.key(f"USER#{username}", "PROFILE")


def _user_from_item(item: dict) -> User:
    values = dynamo.from_item(item)
    return User(
        values["username"],
        values["created_at"],
        values.get("token_hash"),
        values.get("token_issued_at"),
        max(0, values.get("posts_count", 0)),
        values.get("last_post_id"),
        bool(values.get("suspended", False)),
        values.get("display_name") or None,
    )
