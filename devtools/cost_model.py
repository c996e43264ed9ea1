"""DynamoDB's sizing rules and the list prices, for scripts/bench_cost.py.

Pure: no AWS, no I/O. Items are in DynamoDB's wire form ({"S": ...} etc.).
Sizing rules (AWS developer guide, "Item sizes and formats"):
  - an item is the sum of its attribute names (UTF-8 bytes) and values;
  - S: UTF-8 bytes; B: bytes; N: about 1 byte per two significant digits + 1;
  - BOOL and NULL: 1 byte;
  - M and L: 3 bytes + their contents + 1 byte per element;
  - SS, NS, BS: the sum of their elements' sizes.
Write request units: 1 per started KB of the item, twice that inside
TransactWriteItems, plus one write per global secondary index whose keys the
item carries, sized by that index's projection. Read request units: 1 per
started 4 KB, half that when eventually consistent.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass

PRICES_DATED = "2026-12-03"
PRICES_REGION = "us-east-1"
# US dollars, list prices on PRICES_DATED.
API_GATEWAY_REST_PER_MILLION = 3.50
LAMBDA_REQUESTS_PER_MILLION = 0.20
LAMBDA_PER_GB_SECOND = 0.0000166667
DYNAMODB_WRITE_UNITS_PER_MILLION = 0.625
DYNAMODB_READ_UNITS_PER_MILLION = 0.125
S3_PUT_PER_THOUSAND = 0.005  # PUT, COPY, POST, LIST
S3_GET_PER_THOUSAND = 0.0004  # GET and everything else

TABLE_KEYS = ("PK", "SK")


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").replace(".", "").split("e")[0].split("E")[0]
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def _binary_size(value) -> int:
    if isinstance(value, bytes | bytearray):
        return len(value)
    return len(base64.b64decode(value))  # the JSON wire form carries base64


def value_size(typed: dict) -> int:
    ((kind, value),) = typed.items()
    if kind == "S":
        return len(value.encode("utf-8", "surrogatepass"))
    if kind == "N":
        return _number_size(str(value))
    if kind == "B":
        return _binary_size(value)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(element.encode("utf-8", "surrogatepass")) for element in value)
    if kind == "NS":
        return sum(_number_size(str(element)) for element in value)
    if kind == "BS":
        return sum(_binary_size(element) for element in value)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(inner) + 1 for name, inner in value.items())
    if kind == "L":
        return 3 + sum(value_size(inner) + 1 for inner in value)
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + value_size(typed) for name, typed in item.items())


def write_units_of_size(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units_of_size(size: int, consistent: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    included: tuple[str, ...] = ()

    def projected(self, item: dict, table_keys: tuple[str, ...] = TABLE_KEYS) -> dict | None:
        """The item as this index stores it, or None when it lacks the index's keys."""
        if not all(key in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return item
        wanted = set(table_keys) | set(self.keys)
        if self.projection == "INCLUDE":
            wanted |= set(self.included)
        return {name: value for name, value in item.items() if name in wanted}


def indexes_of(table_definition: dict) -> tuple[Index, ...]:
    """The global secondary indexes of a CreateTable definition."""
    return tuple(
        Index(
            index["IndexName"],
            tuple(key["AttributeName"] for key in index["KeySchema"]),
            index["Projection"]["ProjectionType"],
            tuple(index["Projection"].get("NonKeyAttributes", ())),
        )
        for index in table_definition.get("GlobalSecondaryIndexes", ())
    )


def item_write_units(item: dict, indexes: tuple[Index, ...] = (), transactional: bool = False) -> int:
    """Write units of writing `item`: the table (twice in a transaction), plus
    one write per index that holds it, at its projected size."""
    units = write_units_of_size(item_size(item)) * (2 if transactional else 1)
    for index in indexes:
        projected = index.projected(item)
        if projected is not None:
            units += write_units_of_size(item_size(projected))
    return units


_ASSIGNMENT = re.compile(r"([#\w.]+)\s*=\s*(?:\w+\([^:]*)?(:\w+)")


def _update_image(params: dict) -> dict:
    """What an UpdateItem sends: its key plus every value it names (a lower
    bound: the stored item may hold more than the update carries)."""
    image = dict(params["Key"])
    names = params.get("ExpressionAttributeNames", {})
    targets = {value: name for name, value in _ASSIGNMENT.findall(params.get("UpdateExpression", ""))}
    for placeholder, value in params.get("ExpressionAttributeValues", {}).items():
        target = targets.get(placeholder, placeholder[1:])
        image[names.get(target, target)] = value
    for name, update in params.get("AttributeUpdates", {}).items():
        if "Value" in update:
            image[name] = update["Value"]
    return image


def request_write_units(operation: str, params: dict, indexes: tuple[Index, ...] = ()) -> int:
    """Estimated write units of one DynamoDB request; 0 for reads."""
    if operation == "PutItem":
        return item_write_units(params["Item"], indexes)
    if operation == "UpdateItem":
        return item_write_units(_update_image(params), indexes)
    if operation == "DeleteItem":
        return item_write_units(params["Key"], indexes)
    if operation == "TransactWriteItems":
        return sum(_transact_units(entry, indexes) for entry in params["TransactItems"])
    if operation == "BatchWriteItem":
        return sum(
            item_write_units(
                request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"], indexes
            )
            for requests in params["RequestItems"].values()
            for request in requests
        )
    return 0


def _transact_units(entry: dict, indexes: tuple[Index, ...]) -> int:
    ((kind, op),) = entry.items()
    if kind == "Put":
        return item_write_units(op["Item"], indexes, transactional=True)
    if kind == "Update":
        return item_write_units(_update_image(op), indexes, transactional=True)
    # Delete and ConditionCheck: charged at the key's size, twice.
    return item_write_units(op["Key"], (), transactional=True)


def _items_size(items) -> int:
    return sum(item_size(item) for item in items)


def request_read_units(operation: str, params: dict, answer: dict) -> float:
    """Estimated read units of one DynamoDB request, from what it returned
    (a Query or Scan is charged on the items it read; filters are ignored)."""
    consistent = bool(params.get("ConsistentRead"))
    if operation == "GetItem":
        return read_units_of_size(item_size(answer.get("Item", {})), consistent)
    if operation in ("Query", "Scan"):
        return read_units_of_size(_items_size(answer.get("Items", ())), consistent)
    if operation == "BatchGetItem":
        return sum(
            read_units_of_size(item_size(item), bool(params["RequestItems"][table].get("ConsistentRead")))
            for table, items in answer.get("Responses", {}).items()
            for item in items
        )
    if operation == "TransactGetItems":
        return sum(
            2 * read_units_of_size(item_size(entry.get("Item", {})), True) for entry in answer.get("Responses", ())
        )
    return 0.0


@dataclass(frozen=True)
class Usage:
    """What one unit of work (a post) uses, on average."""

    api_requests: float
    lambda_invocations: float
    lambda_memory_mb: int
    lambda_ms: float
    write_units: float
    read_units: float
    s3_puts: float
    s3_gets: float


def cost_per_million(usage: Usage) -> dict[str, float]:
    """US dollars per million units of work, by service and in total."""
    gb_seconds = usage.lambda_invocations * (usage.lambda_memory_mb / 1024) * (usage.lambda_ms / 1000)
    costs = {
        "api_gateway": usage.api_requests * API_GATEWAY_REST_PER_MILLION,
        "lambda": usage.lambda_invocations * LAMBDA_REQUESTS_PER_MILLION + gb_seconds * LAMBDA_PER_GB_SECOND * 1e6,
        "dynamodb": usage.write_units * DYNAMODB_WRITE_UNITS_PER_MILLION
        + usage.read_units * DYNAMODB_READ_UNITS_PER_MILLION,
        "s3": (usage.s3_puts * S3_PUT_PER_THOUSAND + usage.s3_gets * S3_GET_PER_THOUSAND) * 1000,
    }
    costs["total"] = sum(costs.values())
    return costs
