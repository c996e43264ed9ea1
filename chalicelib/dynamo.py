"""Small helpers shared by the DynamoDB adapters: item (de)serialisation and
transactions whose cancellation reasons are handed back to the caller."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.aws import error_code, unavailable_as_domain_error
from chalicelib.errors import StoreUnavailable

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
CONFLICT_RETRIES = 5


def to_item(values: dict) -> dict:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict) -> dict:
    values = {key: _deserializer.deserialize(value) for key, value in item.items()}
    return {key: int(value) if isinstance(value, Decimal) else value for key, value in values.items()}


def key(pk: str, sk: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


class TransactionCancelled(Exception):
    """A transaction's condition failed; `reasons[i]` is the code for item i
    ('None' where that item was fine) and `old_items[i]` its old values, if
    DynamoDB returned them."""

    def __init__(self, reasons: list[str], old_items: list[dict | None]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons
        self.old_items = old_items

    def failed(self, index: int) -> bool:
        return self.reasons[index] == "ConditionalCheckFailed"


def transact(client, items: list[dict], what: str) -> None:
    """Run TransactWriteItems, retrying only on transaction conflicts.

    Two requests racing for the same item (one Idempotency-Key, say) make
    one of them fail with TransactionConflict; retried, it then sees the
    winner's write and fails its condition, which is the answer we want.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            with unavailable_as_domain_error(what):
                client.transact_write_items(TransactItems=items)
            return
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons", [])
            codes = [reason.get("Code", "None") for reason in reasons]
            if "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes:
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not crypto
                continue
            old = [from_item(reason["Item"]) if "Item" in reason else None for reason in reasons]
            raise TransactionCancelled(codes, old) from exc
    raise StoreUnavailable(f"{what}: transaction conflicts persisted")
