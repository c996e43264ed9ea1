"""An author's own primary token, kept from the posts they make with it
while the primary is away, so the replay can post as them with no admin
step (docs/DESIGN.md, "Replay as the author").

The token is kept KMS-encrypted on the author's user item (`USER#<u> /
PROFILE`: `kept_token`, `kept_token_sha256`). A post or delete made with
it reads the stored digest first (one GetItem of one attribute, no write);
only when it differs is the token sealed and written, with a small marker
item (`KEPT#<s> / <username>`) in the same transaction, so the replay can
find the tokens it must retire once their authors' backlogs are empty.
This module is the layout of both, the read and the transaction items;
`upstream.tokens.KeptTokens` reads and retires them.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error

# Attribute names, not secrets.
KEPT_TOKEN = "kept_token"  # noqa: S105
KEPT_TOKEN_SHA256 = "kept_token_sha256"  # noqa: S105
MARKER_PREFIX = "KEPT#"
USER_SK = "PROFILE"


@dataclass(frozen=True)
class PrimaryCredential:
    """The primary's own bearer token a request was made with (a mirrored
    credential), and its SHA-256 as authentication computed it. Never
    logged, shown, or kept in the clear."""

    token: str = field(repr=False)
    sha256: str


@dataclass(frozen=True)
class SealedToken:
    """A kept token as stored: its digest and its KMS ciphertext (base64
    text, so it can ride in a spool document and a request token digest)."""

    sha256: str
    ciphertext: str = field(repr=False)

    @property
    def blob(self) -> bytes:
        return base64.b64decode(self.ciphertext)

    def to_record(self) -> dict:
        return {"sha256": self.sha256, "ciphertext": self.ciphertext}

    @classmethod
    def from_record(cls, record: dict | None) -> SealedToken | None:
        if not isinstance(record, dict):
            return None
        return cls(str(record["sha256"]), str(record["ciphertext"]))

    @classmethod
    def of(cls, sha256: str, blob: bytes) -> SealedToken:
        return cls(sha256, base64.b64encode(blob).decode("ascii"))


@dataclass(frozen=True)
class Keeping:
    """What a write does about the author's kept token: check that the
    stored one is `sha256` (no `sealed`), or store `sealed`."""

    sha256: str
    sealed: SealedToken | None = None


class KeptTokenDiffers(Exception):
    """The author's stored kept token is not the one the request carried
    (none is stored, or another): seal this one and write it with the post."""


def marker_shard_of(username: str, shards: int) -> int:
    """The shard of `username`'s marker. Spread over the write shards: the
    first posts of an outage write many at once."""
    return int(hashlib.sha256(username.encode()).hexdigest()[:8], 16) % shards


def marker_partition(username: str, shards: int) -> str:
    return marker_shard(marker_shard_of(username, shards))


def marker_shard(shard: int) -> str:
    return f"{MARKER_PREFIX}{shard}"


def marker_key(username: str, shards: int) -> dict:
    return dynamo.key(marker_partition(username, shards), username)


def user_key(username: str) -> dict:
    return dynamo.key(f"USER#{username}", USER_SK)


def read_kept_digest(client, table: str, username: str) -> str | None:
    """The digest of the token kept for `username`, if any (a consistent
    read of that one attribute)."""
    with unavailable_as_domain_error("read kept token digest"):
        response = client.get_item(
            TableName=table,
            Key=user_key(username),
            ConsistentRead=True,
            ProjectionExpression=KEPT_TOKEN_SHA256,
        )
    return response.get("Item", {}).get(KEPT_TOKEN_SHA256, {}).get("S")


def keep_update(table: str, username: str, sealed: SealedToken) -> dict:
    """The transaction item that keeps `sealed` on the user item."""
    return {
        "Update": {
            "TableName": table,
            "Key": user_key(username),
            "UpdateExpression": f"SET {KEPT_TOKEN} = :kept_token, {KEPT_TOKEN_SHA256} = :kept_sha256",
            "ExpressionAttributeValues": {
                ":kept_token": {"S": sealed.ciphertext},
                ":kept_sha256": {"S": sealed.sha256},
            },
        }
    }


def marker_put(table: str, shards: int, username: str, sealed: SealedToken) -> dict:
    """The transaction item naming a kept token for the retire step. It has
    no TTL: a marker that expired before its token was retired would leave
    the token on the user item for good (later posts only check it)."""
    item = {**marker_key(username, shards), **dynamo.to_item({"username": username, "token_sha256": sealed.sha256})}
    return {"Put": {"TableName": table, "Item": item}}
