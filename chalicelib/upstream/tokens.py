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

The authors' own primary tokens, kept from the posts they made with them
during an outage (`KeptTokens`), use the same encryption (`TokenCipher`)
under another purpose; the replay tries them first.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from chalicelib.accounts import kept_tokens as kept
from chalicelib.accounts.tokens import token_hash
from chalicelib.aws import dynamo
from chalicelib.aws.clients import error_code, unavailable_as_domain_error
from chalicelib.errors import StoreUnavailable, ValidationFailed

ITEM_SK = "UPSTREAM_TOKEN"
# The encryption contexts' purposes: a ciphertext of one kind never
# decrypts as the other.
UPSTREAM_TOKEN_PURPOSE = "upstream-token"  # noqa: S105 - a label, not a secret
KEPT_TOKEN_PURPOSE = "kept-primary-token"  # noqa: S105 - a label, not a secret
MAX_TOKEN_CHARS = 4096
# Kept tokens retired at once (one small transaction each): a million
# authors take about 20 minutes at 20 ms a transaction, not hours.
RETIRE_WORKERS = 16
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


class TokenCipher:
    """KMS encryption of tokens for one `purpose`, bound to a username by the
    encryption context, with the decrypted plaintext reused while the
    ciphertext it came from is the one stored (for at most `cache_seconds`).
    The admin-registered upstream tokens and the authors' kept primary
    tokens share it, under different purposes."""

    def __init__(
        self, kms, key_id: str, purpose: str, cache_seconds: float = PLAINTEXT_CACHE_SECONDS, monotonic=time.monotonic
    ) -> None:
        self._kms = kms
        self._key_id = key_id
        self._purpose = purpose
        self._cache_seconds = cache_seconds
        self._now = monotonic
        self._cache: dict[str, _Decrypted] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCipher(key_id={self._key_id!r}, purpose={self._purpose!r})"

    def encrypt(self, username: str, token: str) -> bytes:
        with unavailable_as_domain_error(f"encrypt {self._purpose}"):
            return self._kms.encrypt(
                KeyId=self._key_id, Plaintext=token.encode("ascii"), EncryptionContext=self._context(username)
            )["CiphertextBlob"]

    def decrypt(self, username: str, blob: bytes) -> str:
        # Every Encrypt makes a new ciphertext (KMS adds a random IV), so its
        # digest is the stored token's version.
        version = hashlib.sha256(blob).hexdigest()
        with self._lock:
            cached = self._cache.get(username)
        if cached and cached.ciphertext_sha256 == version and self._now() - cached.at <= self._cache_seconds:
            return cached.token
        with unavailable_as_domain_error(f"decrypt {self._purpose}"):
            plain = self._kms.decrypt(CiphertextBlob=blob, EncryptionContext=self._context(username))["Plaintext"]
        token = plain.decode("ascii")
        with self._lock:
            self._cache[username] = _Decrypted(version, token, self._now())
        return token

    def forget(self, username: str) -> None:
        with self._lock:
            self._cache.pop(username, None)

    def _context(self, username: str) -> dict[str, str]:
        return {"lifeboat:purpose": self._purpose, "lifeboat:username": username}


class TokenSealer:
    """Seals the primary token a post was made with, for the write path to
    keep (`accounts.kept_tokens`)."""

    def __init__(self, cipher: TokenCipher) -> None:
        self._cipher = cipher

    def __repr__(self) -> str:
        return f"TokenSealer({self._cipher!r})"

    def seal(self, username: str, credential: kept.PrimaryCredential) -> kept.SealedToken:
        """Raises StoreUnavailable when KMS does not seal it: down now, or
        refusing (a disabled key, a policy): a post must not fail for it."""
        try:
            blob = self._cipher.encrypt(username, credential.token)
        except ClientError as exc:
            raise StoreUnavailable(f"seal primary token: {error_code(exc)}") from exc
        return kept.SealedToken.of(credential.sha256, blob)


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
        self._table = table_name
        self._key_id = key_id
        self._cipher = TokenCipher(kms, key_id, UPSTREAM_TOKEN_PURPOSE, cache_seconds, monotonic)

    def __repr__(self) -> str:
        return f"UpstreamTokens(table={self._table!r}, key_id={self._key_id!r})"

    def put(self, username: str, token: str) -> None:
        blob = self._cipher.encrypt(username, token)
        with unavailable_as_domain_error("store upstream token"):
            self._dynamodb.put_item(
                TableName=self._table,
                Item={"PK": {"S": f"USER#{username}"}, "SK": {"S": ITEM_SK}, "ciphertext": {"B": blob}},
            )
        self._cipher.forget(username)

    def delete(self, username: str) -> None:
        with unavailable_as_domain_error("delete upstream token"):
            self._dynamodb.delete_item(TableName=self._table, Key=dynamo.key(f"USER#{username}", ITEM_SK))
        self._cipher.forget(username)

    def get(self, username: str) -> str | None:
        """The user's token for the primary as stored now, or None if none is
        registered. Raises StoreUnavailable when DynamoDB or KMS cannot
        answer now."""
        with unavailable_as_domain_error("read upstream token"):
            response = self._dynamodb.get_item(
                TableName=self._table, Key=dynamo.key(f"USER#{username}", ITEM_SK), ConsistentRead=True
            )
        if "Item" not in response:
            self._cipher.forget(username)
            return None
        return self._cipher.decrypt(username, response["Item"]["ciphertext"]["B"])


@dataclass(frozen=True)
class ShardsRetired:
    """What a retirement over some marker shards did: tokens dropped, and
    the shards still holding markers (or not reached in time)."""

    retired: int
    unfinished: frozenset[int]


class KeptTokens:
    """The authors' own primary tokens kept from their outage posts
    (`accounts.kept_tokens` has the layout), as the replay uses them: read
    one, drop one the primary refused, and retire those whose authors'
    backlogs are empty. DynamoDB + KMS; takes its clients."""

    def __init__(self, dynamodb, cipher: TokenCipher, table_name: str, shards: int) -> None:
        self._dynamodb = dynamodb
        self._cipher = cipher
        self._table = table_name
        self._shards = shards

    def __repr__(self) -> str:
        return f"KeptTokens(table={self._table!r})"

    def get(self, username: str) -> str | None:
        """The author's kept token, or None. Raises StoreUnavailable when
        DynamoDB or KMS cannot answer now."""
        with unavailable_as_domain_error("read kept token"):
            response = self._dynamodb.get_item(
                TableName=self._table,
                Key=kept.user_key(username),
                ConsistentRead=True,
                ProjectionExpression=kept.KEPT_TOKEN,
            )
        stored = response.get("Item", {}).get(kept.KEPT_TOKEN)
        if stored is None:
            self._cipher.forget(username)
            return None
        return self._cipher.decrypt(username, base64.b64decode(stored["S"]))

    def refused(self, username: str, token: str) -> None:
        """The primary refused the kept token (401: revoked or expired
        there): drop it, unless another has been kept since."""
        self._drop(username, token_hash(token), quiet_before=None)

    def retire(self, quiet_before: str, keep_going: Callable[[], bool] = lambda: True) -> int:
        """Drop every kept token whose author changed nothing (no post, no
        delete: the feed marker's `feed_changed_at`) since `quiet_before`,
        while `keep_going()`. The caller has just seen the whole backlog
        empty, so such an author has nothing left to send; what is left
        for want of time is retired by a later run. Returns how many were
        dropped."""
        return self.retire_shards(range(self._shards), quiet_before, keep_going).retired

    def retire_shards(
        self, shards: Iterable[int], quiet_before: str, keep_going: Callable[[], bool] = lambda: True
    ) -> ShardsRetired:
        """`retire` over the markers of `shards` only (one Query each, more
        pages if full). The shards left unfinished: those still holding a
        marker after their visit, and those not reached in time. One
        transaction each, `RETIRE_WORKERS` at a time."""
        retired, unfinished = 0, set()
        pending = list(shards)
        with ThreadPoolExecutor(max_workers=RETIRE_WORKERS) as pool:
            while pending and keep_going():
                shard = pending[0]
                found, dropped = self._retire_shard(pool, shard, quiet_before, keep_going)
                retired += dropped
                if found is None:  # out of time
                    break
                if found > dropped:
                    unfinished.add(shard)
                pending.pop(0)
        return ShardsRetired(retired, frozenset(unfinished | set(pending)))

    def _retire_shard(self, pool, shard: int, quiet_before: str, keep_going) -> tuple[int | None, int]:
        """(markers found, dropped) in one shard; found is None when time ran out."""
        found = dropped = 0
        for batch in _batches(self._markers(kept.marker_shard(shard)), RETIRE_WORKERS * 4):
            if not keep_going():
                return None, dropped
            found += len(batch)
            dropped += sum(pool.map(lambda marker: self._drop(*marker, quiet_before), batch))
        return found, dropped

    def _markers(self, partition: str):
        query = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ProjectionExpression": "#username, token_sha256",
            "ExpressionAttributeNames": {"#username": "username"},
        }
        while True:
            with unavailable_as_domain_error("list kept tokens"):
                response = self._dynamodb.query(**query)
            yield from ((item["username"]["S"], item["token_sha256"]["S"]) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _drop(self, username: str, sha256: str, quiet_before: str | None) -> int:
        """Remove the token from the user item and its marker, both only if
        the token is still `sha256` (and, with `quiet_before`, the author
        quiet since); 1 if it was dropped, 0 if it stays."""
        condition = f"{kept.KEPT_TOKEN_SHA256} = :sha256"
        values = {":sha256": {"S": sha256}}
        if quiet_before is not None:
            condition += " AND (attribute_not_exists(feed_changed_at) OR feed_changed_at < :quiet)"
            values[":quiet"] = {"S": quiet_before}
        user = {
            "Update": {
                "TableName": self._table,
                "Key": kept.user_key(username),
                "UpdateExpression": f"REMOVE {kept.KEPT_TOKEN}, {kept.KEPT_TOKEN_SHA256}",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }
        marker = {
            "Delete": {
                "TableName": self._table,
                "Key": kept.marker_key(username, self._shards),
                "ConditionExpression": "token_sha256 = :sha256",
                "ExpressionAttributeValues": {":sha256": {"S": sha256}},
            }
        }
        try:
            dynamo.transact(self._dynamodb, [user, marker], "drop kept token")
        except dynamo.TransactionCancelled:
            return 0
        self._cipher.forget(username)
        return 1


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
