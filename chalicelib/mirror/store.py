"""The mirror's DynamoDB adapter: applying change batches as the items
Lifeboat already reads (users, tokens, follow edges, posts).

Accounts and follows are rare beside posts, and need conditions (a profile
keeps what Lifeboat wrote on it; follow counts move only with a new edge),
so they are one write each. Credentials and posts are idempotent states
with no condition: they go in BatchWriteItem, 25 to a request, with no
transaction (docs/DESIGN.md, "Warm standby", has the cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chalicelib.accounts.store import PRIMARY_SOURCE, Grant, grant_from_values
from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.core.models import Post
from chalicelib.errors import FollowLimitReached
from chalicelib.mastodon.follows import Follow
from chalicelib.mirror import layout
from chalicelib.mirror.changes import UNTOLD, AccountChange, CredentialChange, FollowChange, PostChange
from chalicelib.posts.items import mirrored_post_key, post_from_item

PASSWORD_PURPOSE = "mirrored-password"  # noqa: S105 - a KMS context label, not a secret


@dataclass(frozen=True)
class MirroredAccount:
    """What the mirror keeps of an account (never its password hash)."""

    username: str
    display_name: str
    created_at: str
    suspended: bool
    has_password: bool


@dataclass(frozen=True)
class PostsApplied:
    stored: int
    deleted: int
    ours: int  # posts Lifeboat replayed, recognised and not stored again


class FollowGraph(Protocol):
    """What the mirror needs of the follow graph (mastodon.follows)."""

    def follow(self, follow: Follow, created_at: str) -> bool: ...

    def unfollow(self, follower: str, followee: str) -> bool: ...


class MirrorStore:
    """DynamoDB (and KMS, for password hashes) adapter. Takes its clients."""

    def __init__(self, dynamodb, kms, table_name: str, key_id: str, follows: FollowGraph, shards: int) -> None:
        self._client = dynamodb
        self._kms = kms
        self._table = table_name
        self._key_id = key_id
        self._follows = follows
        self._shards = shards

    def __repr__(self) -> str:
        return f"MirrorStore(table={self._table!r})"

    # -- accounts -----------------------------------------------------------

    def apply_account(self, change: AccountChange) -> bool:
        """The account as a Lifeboat user: its profile's mirrored fields set,
        whatever else Lifeboat keeps on it (token, counts, feed marker) kept,
        and a field the change leaves untold (a Mastodon API's account knows
        no password hash) as it was. True if it was not mirrored before."""
        values = {
            ":u": {"S": change.username},
            ":name": {"S": change.display_name},
            ":at": {"S": change.created_at},
            ":source": {"S": layout.SOURCE},
        }
        update = "SET username = :u, display_name = :name, created_at = :at, #src = :source"
        if change.suspended is not UNTOLD:
            values[":suspended"] = {"BOOL": change.suspended}
            update += ", suspended = :suspended"
        if isinstance(change.password_bcrypt, str):
            values[":pw"] = {"B": self._encrypt_password(change.username, change.password_bcrypt)}
            update += ", password_bcrypt = :pw"
        elif change.password_bcrypt is None:
            update += " REMOVE password_bcrypt"
        with unavailable_as_domain_error("mirror account"):
            response = self._client.update_item(
                TableName=self._table,
                Key=dynamo.key(f"USER#{change.username}", "PROFILE"),
                UpdateExpression=update,
                ExpressionAttributeNames={"#src": "source"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        return response.get("Attributes", {}).get("source", {}).get("S") != layout.SOURCE

    def _encrypt_password(self, username: str, password_bcrypt: str) -> bytes:
        with unavailable_as_domain_error("encrypt mirrored password"):
            return self._kms.encrypt(
                KeyId=self._key_id,
                Plaintext=password_bcrypt.encode("ascii"),
                EncryptionContext={"lifeboat:purpose": PASSWORD_PURPOSE, "lifeboat:username": username},
            )["CiphertextBlob"]

    def account(self, username: str) -> MirroredAccount | None:
        with unavailable_as_domain_error("get mirrored account"):
            response = self._client.get_item(
                TableName=self._table, Key=dynamo.key(f"USER#{username}", "PROFILE"), ConsistentRead=True
            )
        if "Item" not in response:
            return None
        item = response["Item"]
        values = dynamo.from_item({name: value for name, value in item.items() if name != "password_bcrypt"})
        return MirroredAccount(
            values["username"],
            values.get("display_name", ""),
            values["created_at"],
            bool(values.get("suspended", False)),
            "password_bcrypt" in item,
        )

    def suspended(self, username: str) -> bool:
        account = self.account(username)
        return account is not None and account.suspended

    def password_hash(self, username: str) -> str | None:
        """The account's bcrypt hash, decrypted for one sign-in's check; None
        if the primary sent none (an SSO account, or not mirrored)."""
        with unavailable_as_domain_error("get mirrored password"):
            response = self._client.get_item(
                TableName=self._table,
                Key=dynamo.key(f"USER#{username}", "PROFILE"),
                ProjectionExpression="password_bcrypt",
                ConsistentRead=True,
            )
        blob = response.get("Item", {}).get("password_bcrypt", {}).get("B")
        if blob is None:
            return None
        with unavailable_as_domain_error("decrypt mirrored password"):
            plaintext = self._kms.decrypt(
                CiphertextBlob=blob,
                KeyId=self._key_id,
                EncryptionContext={"lifeboat:purpose": PASSWORD_PURPOSE, "lifeboat:username": username},
            )["Plaintext"]
        return plaintext.decode("ascii")

    # -- credentials ----------------------------------------------------------

    def apply_credentials(self, changes: list[CredentialChange]) -> int:
        """TOKEN#<digest> items as Lifeboat's own, with their scopes; a
        revoked one deleted. The last change of a digest wins. Returns the
        requests sent."""
        latest = {change.token_sha256: change for change in changes}
        requests = [self._credential_request(change) for change in latest.values()]
        return dynamo.batch_write(self._client, self._table, requests, "mirror credentials")

    def _credential_request(self, change: CredentialChange) -> dict:
        key = dynamo.key(f"TOKEN#{change.token_sha256}", "TOKEN")
        if change.revoked:
            return {"DeleteRequest": {"Key": key}}
        values = {"username": change.username, "scopes": " ".join(sorted(change.scopes)), "source": PRIMARY_SOURCE}
        return {"PutRequest": {"Item": {**key, **dynamo.to_item(values)}}}

    def grant(self, token_sha256: str) -> Grant | None:
        with unavailable_as_domain_error("get token"):
            response = self._client.get_item(TableName=self._table, Key=dynamo.key(f"TOKEN#{token_sha256}", "TOKEN"))
        return grant_from_values(dynamo.from_item(response["Item"])) if "Item" in response else None

    # -- follows ---------------------------------------------------------------

    def apply_follow(self, change: FollowChange, created_at: str) -> bool:
        return follow_through(self._follows, change, created_at)

    # -- posts ---------------------------------------------------------------

    def apply_posts(self, changes: list[PostChange], retention_days: int, *, check_ours: bool = True) -> PostsApplied:
        """Store (or, deleted, remove) mirrored posts, the last change of a
        post winning. With `check_ours`, posts the replay sent (an UPSTREAM#
        marker) are recognised in one BatchGetItem per 100 and skipped."""
        latest = {change.upstream_id: change for change in changes}
        ours = self._replayed(list(latest)) if check_ours and latest else set()
        requests, stored, deleted = [], 0, 0
        for change in latest.values():
            if change.upstream_id in ours:
                continue
            post_id = layout.mirrored_post_id(change.created_at, change.upstream_id)
            key = mirrored_post_key(post_id, self._shards)
            if change.deleted:
                requests.append({"DeleteRequest": {"Key": key}})
                deleted += 1
                continue
            record = layout.mirrored_post_record(change, post_id, retention_days)
            index = {"AuthorPK": f"USER#{change.author}", "AuthorSK": post_id}
            requests.append({"PutRequest": {"Item": {**key, **dynamo.to_item({**record, **index})}}})
            stored += 1
        dynamo.batch_write(self._client, self._table, requests, "mirror posts")
        return PostsApplied(stored, deleted, len(ours))

    def post(self, post_id: str) -> Post | None:
        """A mirrored post by its Lifeboat id (its shard follows from the id)."""
        key = mirrored_post_key(post_id, self._shards)
        with unavailable_as_domain_error("get mirrored post"):
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return post_from_item(response["Item"]) if "Item" in response else None

    def _replayed(self, upstream_ids: list[str]) -> set[str]:
        keys = [dynamo.key(layout.upstream_marker_pk(upstream_id), "POST") for upstream_id in upstream_ids]
        found = dynamo.batch_get(self._client, self._table, keys, "read replay markers")
        return {item["PK"]["S"].removeprefix(layout.UPSTREAM_PREFIX) for item in found}


def follow_through(graph: FollowGraph, change: FollowChange, created_at: str) -> bool:
    """A mirrored follow change applied through the follow graph (its counts
    move only if the edge changed). False if nothing changed, or the follower
    is at the follow cap. The adapter and its fake share it."""
    if not change.active:
        return graph.unfollow(change.follower, change.followee)
    try:
        return graph.follow(Follow(change.follower, change.followee), created_at)
    except FollowLimitReached:
        return False
