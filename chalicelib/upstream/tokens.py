"""Per-user access tokens for a Mastodon primary, encrypted at rest with KMS.

The admin registers each user's token for the primary; the replay posts as
that user with it. The table holds only KMS ciphertext, bound to the
username by the encryption context, so a ciphertext copied onto another
user's item does not decrypt. On AWS the key is a customer-managed KMS key;
the local stack and the tests create one in moto (`ensure_key`). Tokens are
never logged, never returned by the API, and kept in memory only for
`cache_seconds` after a decrypt (a replay of a backlog sends many posts per
author; one Decrypt per post would be slow and cost $0.03 per 10,000).

Every `get` still reads the item (one consistent GetItem): the cached
plaintext is used only while the stored ciphertext is the one it was
decrypted from. Tokens are put and deleted by the API's containers and used
by the maintenance container, so a cache trusted for a time would keep
posting with a replaced or deleted token there.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.errors import ValidationFailed

ITEM_SK = "UPSTREAM_TOKEN"
MAX_TOKEN_CHARS = 4096
# How long a decrypted token may stay in a container's memory.
PLAINTEXT_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class _Decrypted:
    ciphertext_sha256: str
    token: str = field(repr=False)
    at: float


# It goes into an Authorization header: visible ASCII only, no controls.
_PRINTABLE_ASCII_RE = re.compile(r"[!-~]+")


def ensure_key(kms, alias: str) -> str:
    """The key behind `alias`, created if missing (local stack and tests;
    on AWS the deploy template owns the key and its policy)."""
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page["Aliases"]:
            if entry["AliasName"] == alias and entry.get("TargetKeyId"):
                return entry["TargetKeyId"]
    key_id = kms.create_key(Description="Lifeboat upstream tokens")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def validate_token(body: object) -> str:
    if not isinstance(body, dict) or set(body) != {"token"}:
        raise ValidationFailed('the body must be {"token": "..."}', code="invalid_body")
    token = body["token"]
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_CHARS:
        raise ValidationFailed("token must be a non-empty string", code="invalid_token")
    if not _PRINTABLE_ASCII_RE.fullmatch(token.strip()) or not token.isascii():
        raise ValidationFailed("token must be one line of printable ASCII", code="invalid_token")
    return token.strip()


class UpstreamTokens:
    """DynamoDB + KMS adapter: `USER#<username> / UPSTREAM_TOKEN` holds
    the ciphertext. Takes its clients."""

    def __init__(
        self,
        dynamodb,
        kms,
        table_name: str,
        key_id: str,
        cache_seconds: float = PLAINTEXT_CACHE_SECONDS,
        monotonic=time.monotonic,
    ) -> None:
        self._dynamodb = dynamodb
        self._kms = kms
        self._table = table_name
        self._key_id = key_id
        self._cache_seconds = cache_seconds
        self._now = monotonic
        self._cache: dict[str, _Decrypted] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UpstreamTokens(table={self._table!r}, key_id={self._key_id!r})"

    def put(self, username: str, token: str) -> None:
        with unavailable_as_domain_error("encrypt upstream token"):
            blob = self._kms.encrypt(
                KeyId=self._key_id, Plaintext=token.encode("ascii"), EncryptionContext=_context(username)
            )["CiphertextBlob"]
        with unavailable_as_domain_error("store upstream token"):
            self._dynamodb.put_item(
                TableName=self._table,
                Item={"PK": {"S": f"USER#{username}"}, "SK": {"S": ITEM_SK}, "ciphertext": {"B": blob}},
            )
        with self._lock:
            self._cache.pop(username, None)

    def delete(self, username: str) -> None:
        with unavailable_as_domain_error("delete upstream token"):
            self._dynamodb.delete_item(TableName=self._table, Key=dynamo.key(f"USER#{username}", ITEM_SK))
        with self._lock:
            self._cache.pop(username, None)

    def get(self, username: str) -> str | None:
        """The user's token for the primary as stored now, or None if none is
        registered. Raises StoreUnavailable when DynamoDB or KMS cannot
        answer now."""
        with unavailable_as_domain_error("read upstream token"):
            response = self._dynamodb.get_item(
                TableName=self._table, Key=dynamo.key(f"USER#{username}", ITEM_SK), ConsistentRead=True
            )
        if "Item" not in response:
            with self._lock:
                self._cache.pop(username, None)
            return None
        blob = response["Item"]["ciphertext"]["B"]
        # Every Encrypt makes a new ciphertext (KMS adds a random IV), so its
        # digest is the stored token's version.
        version = hashlib.sha256(blob).hexdigest()
        with self._lock:
            cached = self._cache.get(username)
        if cached and cached.ciphertext_sha256 == version and self._now() - cached.at <= self._cache_seconds:
            return cached.token
        with unavailable_as_domain_error("decrypt upstream token"):
            plain = self._kms.decrypt(CiphertextBlob=blob, EncryptionContext=_context(username))["Plaintext"]
        token = plain.decode("ascii")
        with self._lock:
            self._cache[username] = _Decrypted(version, token, self._now())
        return token


def _context(username: str) -> dict[str, str]:
    return {"lifeboat:purpose": "upstream-token", "lifeboat:username": username}
