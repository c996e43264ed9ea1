"""Small helpers shared by the DynamoDB adapters: item (de)serialisation and
transactions whose cancellation reasons are handed back to the caller."""

from __future__ import annotations

import hashlib
import json
import random
import time
from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.aws.clients import error_code, unavailable_as_domain_error
from chalicelib.errors import StoreUnavailable

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
CONFLICT_RETRIES = 5
BATCH_GET_MAX_KEYS = 100  # DynamoDB's limit for one BatchGetItem
# Rounds of UnprocessedKeys retried (with backoff) before the read gives up:
# keys DynamoDB keeps leaving out mean it is throttling, so answer 503.
BATCH_GET_ROUNDS = 6
BATCH_WRITE_MAX_ITEMS = 25  # DynamoDB's limit for one BatchWriteItem


def to_item(values: dict) -> dict:
    return {key: _serializer.serialize(_for_dynamo(value)) for key, value in values.items() if value is not None}


def _for_dynamo(value):
    # boto3 refuses floats (they are inexact); DynamoDB numbers are decimals.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _for_dynamo(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_for_dynamo(inner) for inner in value]
    return value


def from_item(item: dict) -> dict:
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}


def _plain(value):
    """DynamoDB numbers come back as Decimal, nested ones too: make them
    ints (or floats) so they serialise as JSON and compare as numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list | set):
        return [_plain(inner) for inner in value]
    return value


def key(pk: str, sk: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


# Cancellation reasons that mean "not now" rather than "never": the same
# transaction may commit on a later try. A conflict (another transaction on
# one of the items) usually clears within milliseconds, so it is retried
# here first; throttling does not clear that fast, so it goes straight back
# to the caller as StoreUnavailable (a post then goes to the spool).
CONFLICT = "TransactionConflict"
THROTTLED = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
CONDITION_FAILED = "ConditionalCheckFailed"


class TransactionCancelled(Exception):
    """A transaction's condition failed; `reasons[i]` is the code for item i
    ('None' where that item was fine) and `old_items[i]` its old values, if
    DynamoDB returned them."""

    def __init__(self, reasons: list[str], old_items: list[dict | None]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons
        self.old_items = old_items

    def failed(self, index: int) -> bool:
        return self.reasons[index] == CONDITION_FAILED


def request_token(name: str, items: list[dict]) -> str:
    """A ClientRequestToken (at most 36 characters) for the transaction of
    `items`, named after what it writes (a post id).

    Real DynamoDB applies a transaction once per token for 10 minutes, so
    a retry of one that committed (its answer lost to a timeout) changes
    nothing. The token is the same for the same items, whoever retries
    (botocore or `transact`), and differs for any other request about the
    same post (the spool fold, a repeated fold), which DynamoDB would
    otherwise refuse as an IdempotentParameterMismatch.
    """
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
    return f"{name[:26]}.{digest[: 35 - min(len(name), 26)]}"


def batch_get(client, table: str, keys: list[dict], what: str, *, consistent: bool = False) -> list[dict]:
    """The stored items among `keys` (raw, in no particular order): one
    BatchGetItem per 100 keys, then the keys DynamoDB left unprocessed again,
    with backoff as AWS asks. Raises StoreUnavailable if some are still
    unprocessed after BATCH_GET_ROUNDS rounds."""
    found: list[dict] = []
    for start in range(0, len(keys), BATCH_GET_MAX_KEYS):
        request = {table: {"Keys": keys[start : start + BATCH_GET_MAX_KEYS], "ConsistentRead": consistent}}
        for response in _until_processed(
            lambda ask: client.batch_get_item(RequestItems=ask), request, "UnprocessedKeys", what
        ):
            found += response["Responses"].get(table, [])
    return found


def batch_write(client, table: str, requests: list[dict], what: str) -> int:
    """Apply Put/Delete `requests` (BatchWriteItem's WriteRequest shapes),
    25 to a request, retrying the items DynamoDB left unprocessed with
    backoff as AWS asks. No conditions, no transaction: for writes that are
    idempotent states (the mirror). Returns the requests sent; raises
    StoreUnavailable if items are still unprocessed after BATCH_GET_ROUNDS."""
    sent = 0
    for start in range(0, len(requests), BATCH_WRITE_MAX_ITEMS):
        pending = {table: requests[start : start + BATCH_WRITE_MAX_ITEMS]}
        answers = _until_processed(
            lambda ask: client.batch_write_item(RequestItems=ask), pending, "UnprocessedItems", what
        )
        sent += sum(1 for _ in answers)
    return sent


def _until_processed(call, request: dict, unprocessed: str, what: str):
    """Each answer of `call(request)`, asked again for what the answer's
    `unprocessed` part left, with jittered exponential backoff;
    StoreUnavailable after BATCH_GET_ROUNDS rounds that all left some. The
    callers call the client themselves, so that the least-privilege test
    finds each action where it is used."""
    for attempt in range(BATCH_GET_ROUNDS):
        with unavailable_as_domain_error(what):
            response = call(request)
        yield response
        request = response.get(unprocessed) or None
        if not request:
            return
        time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not crypto
    kind = "keys" if unprocessed == "UnprocessedKeys" else "items"
    raise StoreUnavailable(f"{what}: DynamoDB kept {kind} unprocessed")


def transact(client, items: list[dict], what: str, idempotent_as: str | None = None) -> None:
    """Run TransactWriteItems, retrying only on transaction conflicts.

    Two requests racing for the same item (one Idempotency-Key, say) make
    one of them fail with TransactionConflict; retried, it then sees the
    winner's write and fails its condition, which is the answer we want.

    Raises TransactionCancelled if a condition failed, StoreUnavailable if
    DynamoDB cannot take the write now (throttled, unreachable, or the
    conflicts persisted). With `idempotent_as` (a post id), every attempt
    carries the same ClientRequestToken (see `request_token`).
    """
    extra = {"ClientRequestToken": request_token(idempotent_as, items)} if idempotent_as else {}
    for attempt in range(CONFLICT_RETRIES):
        try:
            with unavailable_as_domain_error(what):
                client.transact_write_items(TransactItems=items, **extra)
            return
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons", [])
            codes = [reason.get("Code", "None") for reason in reasons]
            if CONDITION_FAILED in codes:
                # A failed condition is an answer, whatever else went wrong.
                old = [from_item(reason["Item"]) if "Item" in reason else None for reason in reasons]
                raise TransactionCancelled(codes, old) from exc
            if THROTTLED & set(codes):
                raise StoreUnavailable(f"{what}: throttled inside the transaction") from exc
            if CONFLICT in codes:
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not crypto
                continue
            raise
    raise StoreUnavailable(f"{what}: transaction conflicts persisted")
