"""DynamoDB capacity units and AWS list prices, estimated from what went over
the wire (scripts/bench_cost.py records it; this module only does sums).

Sizing follows AWS's published rules ("DynamoDB item sizes and formats",
"Capacity unit consumption"):
  - an item's size is the sum of its attribute names' UTF-8 bytes and its
    values' sizes: a string its UTF-8 bytes, a number 1 byte plus 1 per two
    significant digits, a binary its raw bytes, a Boolean or null 1 byte, a
    list or map 3 bytes plus its elements plus 1 byte per element, a set the
    sum of its elements;
  - a write costs 1 write unit per started KB of the larger of the item's
    size before and after it (a delete: the deleted item), 2 inside
    TransactWriteItems; a failed conditional write still costs its units;
  - each global secondary index the write touches costs 1 more write unit
    (inside a transaction too) per started KB of the index entry (the table's keys, the index's keys and
    the projected attributes: KEYS_ONLY, INCLUDE or ALL), 2 when the index
    key changes (a delete and a put);
  - a read costs 1 read unit per started 4 KB, half of it when eventually
    consistent, twice in TransactGetItems; a Query or Scan rounds the sum of
    the items it read once, a GetItem or each BatchGetItem key separately,
    with a minimum of one unit (an absent item too).

What the wire does not show is approximated, and said so in `APPROXIMATIONS`.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
LIST_OR_MAP_OVERHEAD = 3
ELEMENT_OVERHEAD = 1

APPROXIMATIONS = (
    "An item's size before a write is its last version written over the wire in this run (the bench's moto "
    "starts empty and every write goes through the proxy), in the order the requests arrived.",
    "An update's after-image is that before-image with the update's SET, ADD and REMOVE actions applied to "
    "their top-level attributes.",
    "Reads with a ProjectionExpression are charged on the full item when the run knows it, otherwise on what "
    "came back; a Query's filtered-out items are sized at the mean of those it returned.",
    "A ConditionCheck in a transaction costs 2 write units per started KB of the checked item. The index "
    "writes a transaction causes are counted once, as standard writes (only the table's writes are doubled); "
    "AWS's documentation does not say, so the figure with them doubled is shown too.",
    "Index entries are sized without the 100-byte per-item overhead, which AWS adds for storage only.",
)


# -- sizes --------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """1 byte plus 1 per two significant digits (leading and trailing zeros
    trimmed, sign, point and exponent not counted)."""
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0")
    return 1 + math.ceil(max(len(digits), 1) / 2)


def _binary_size(value) -> int:
    """Raw bytes: the wire carries them base64-encoded."""
    return len(base64.b64decode(value)) if isinstance(value, str) else len(value)


_SCALAR_SIZES: dict[str, Callable] = {
    "S": lambda value: len(value.encode("utf-8", "surrogatepass")),
    "N": number_size,
    "B": _binary_size,
    "BOOL": lambda value: 1,
    "NULL": lambda value: 1,
}


def value_size(typed: dict) -> int:
    """The size of one attribute value in DynamoDB's JSON (`{"S": "x"}`)."""
    ((kind, value),) = typed.items()
    if kind in _SCALAR_SIZES:
        return _SCALAR_SIZES[kind](value)
    if kind in ("SS", "NS", "BS"):
        return sum(_SCALAR_SIZES[kind[0]](element) for element in value)
    if kind == "L":
        return LIST_OR_MAP_OVERHEAD + sum(value_size(element) + ELEMENT_OVERHEAD for element in value)
    if kind == "M":
        return LIST_OR_MAP_OVERHEAD + sum(
            len(name.encode("utf-8")) + value_size(element) + ELEMENT_OVERHEAD for name, element in value.items()
        )
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: dict) -> int:
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def units(size: int, unit_bytes: int) -> int:
    """Started units of `unit_bytes`, at least one."""
    return max(1, math.ceil(size / unit_bytes))


# -- the table's shape, from DescribeTable ------------------------------------------------


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # KEYS_ONLY, INCLUDE or ALL
    included: frozenset[str] = frozenset()

    def holds(self, item: dict | None) -> bool:
        """A global secondary index is sparse: only items with all its keys."""
        return item is not None and all(key in item for key in self.keys)

    def entry(self, item: dict, table_keys: tuple[str, ...]) -> dict:
        if self.projection == "ALL":
            return item
        kept = {*table_keys, *self.keys, *(self.included if self.projection == "INCLUDE" else ())}
        return {name: value for name, value in item.items() if name in kept}


@dataclass(frozen=True)
class Table:
    name: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @classmethod
    def from_description(cls, description: dict) -> Table:
        """From DescribeTable's `Table`."""
        indexes = tuple(
            Index(
                index["IndexName"],
                tuple(key["AttributeName"] for key in index["KeySchema"]),
                index["Projection"]["ProjectionType"],
                frozenset(index["Projection"].get("NonKeyAttributes", ())),
            )
            for index in description.get("GlobalSecondaryIndexes", ())
        )
        keys = tuple(key["AttributeName"] for key in description["KeySchema"])
        return cls(description["TableName"], keys, indexes)

    def key_of(self, item: dict) -> str:
        return json.dumps({name: item[name] for name in self.keys}, sort_keys=True)

    def index_units(self, before: dict | None, after: dict | None) -> int:
        """Write units the indexes take for a change of an item from `before`
        to `after` (None: absent): a put for an entry that appears or
        changes, and a delete as well when its index keys changed."""
        total = 0
        for index in self.indexes:
            old = index.entry(before, self.keys) if index.holds(before) else None
            new = index.entry(after, self.keys) if index.holds(after) else None
            if old == new:
                continue
            moved = old is not None and new is not None and any(before[k] != after[k] for k in index.keys)
            if new is not None:
                total += units(item_size(new), WRITE_UNIT_BYTES)
            if old is not None and (new is None or moved):
                total += units(item_size(old), WRITE_UNIT_BYTES)
        return total


# -- update expressions -------------------------------------------------------------------

# A clause keyword, not a placeholder (#set, :add) that spells one.
_CLAUSE = re.compile(r"(?<![#:\w])(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)
_VALUE = re.compile(r":[A-Za-z0-9_]+")


def _path(path: str, names: dict) -> list[str]:
    """A document path's map keys, placeholders resolved; a list index ends it
    (the whole list is then taken as changed)."""
    head = path.strip().split("[", 1)[0]
    return [names.get(part, part) for part in head.split(".")]


def _top_level(path: str, names: dict) -> str:
    return _path(path, names)[0]


def _assign(item: dict, path: list[str], value: dict | None) -> None:
    """Set (None: remove) `path` in `item`, rebuilding the maps on the way."""
    name, rest = path[0], path[1:]
    if rest and "M" in item.get(name, {}):
        inner = dict(item[name]["M"])
        _assign(inner, rest, value)
        item[name] = {"M": inner}
    elif value is None:
        item.pop(name, None)
    else:
        item[name] = value


def _current(item: dict, path: list[str]) -> dict | None:
    value = item.get(path[0])
    for name in path[1:]:
        if value is None or "M" not in value:
            return None
        value = value["M"].get(name)
    return value


def _add(current: dict | None, value: dict) -> dict:
    """ADD (and SET's `+`): a number is added to, a set gets the elements."""
    if "N" in value:
        return {"N": str(Decimal(current["N"] if current and "N" in current else "0") + Decimal(value["N"]))}
    ((kind, elements),) = value.items()
    return {kind: sorted({*(current or {}).get(kind, ()), *elements})}


def _top_level_split(text: str, separators: str) -> list[str]:
    """`text` split at the separators that stand outside parentheses."""
    pieces, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char in separators and depth == 0:
            pieces.extend((current, char))
            current = ""
        else:
            current += char
    return [*pieces, current]


def _operand(item: dict, text: str, names: dict, values: dict) -> dict | None:
    """One operand of a SET: a placeholder, a path, if_not_exists or list_append."""
    text = text.strip()
    if text.startswith(":"):
        return values[text]
    call = re.fullmatch(r"(if_not_exists|list_append)\s*\((.*)\)", text, re.DOTALL)
    if call is None:
        return _current(item, _path(text, names))
    first, _, second = _top_level_split(call.group(2), ",")
    left, right = _operand(item, first, names, values), _operand(item, second, names, values)
    if call.group(1) == "if_not_exists":
        return left if left is not None else right
    return {"L": [*(left or {}).get("L", []), *(right or {}).get("L", [])]}


def _set_value(item: dict, expression: str, names: dict, values: dict) -> dict:
    """The value of `path = expression`: one operand, or two joined by + or -."""
    pieces = _top_level_split(expression, "+-")
    value = _operand(item, pieces[0], names, values)
    for sign, operand in zip(pieces[1::2], pieces[2::2], strict=True):
        amount = _operand(item, operand, names, values) or {"N": "0"}
        value = _add(value, amount if sign == "+" else {"N": str(-Decimal(amount["N"]))})
    return value if value is not None else {"NULL": True}


def _apply_action(item: dict, keyword: str, action: str, names: dict, values: dict) -> None:
    if keyword == "SET":
        path, expression = action.split("=", 1)
        _assign(item, _path(path, names), _set_value(item, expression, names, values))
    elif keyword == "REMOVE":
        _assign(item, _path(action, names), None)
    else:  # ADD path :v, DELETE path :v (elements from a set)
        path, placeholder = action.split()
        where, current = _path(path, names), _current(item, _path(path, names))
        if keyword == "ADD":
            _assign(item, where, _add(current, values[placeholder]))
        elif current is not None:
            ((kind, elements),) = current.items()
            kept = sorted(set(elements) - set(values[placeholder][kind]))
            _assign(item, where, {kind: kept} if kept else None)


def apply_update(before: dict, request: dict) -> dict:
    """The item after `request`'s UpdateExpression (a path through a list
    replaces the whole list attribute's value)."""
    item = dict(before)
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    parts = _CLAUSE.split(request.get("UpdateExpression", ""))
    for keyword, body in zip(parts[1::2], parts[2::2], strict=True):
        for action in _top_level_split(body, ",")[::2]:
            if action.strip():
                _apply_action(item, keyword.upper(), action, names, values)
    return item


# -- the ledger: what each item looked like -----------------------------------------------


@dataclass
class Ledger:
    """Every item's last version (None: absent), from the writes in wire
    order; an item not written yet is absent."""

    tables: dict[str, Table]
    _items: dict[tuple[str, str], dict | None] = field(default_factory=dict)

    def get(self, table: str, key: dict) -> dict | None:
        return self._items.get((table, self.tables[table].key_of(key)))

    def put(self, table: str, item: dict | None, key: dict) -> None:
        self._items[(table, self.tables[table].key_of(key))] = item


# -- write units --------------------------------------------------------------------------


def _change(action: str, request: dict, before: dict | None) -> dict | None:
    """The item after one Put, Update or Delete (ConditionCheck: unchanged)."""
    if action == "Put":
        return request["Item"]
    if action == "Update":
        return apply_update(before or request["Key"], request)
    if action == "Delete":
        return None
    return before


class Writes(NamedTuple):
    """A request's estimated write units, and the part of them that index
    writes caused inside a transaction: counted once in `units`; AWS does
    not say whether it doubles them, so a report can show both."""

    units: int = 0
    transactional_index_units: int = 0

    def __add__(self, other: Writes) -> Writes:
        return Writes(self.units + other.units, self.transactional_index_units + other.transactional_index_units)


def write_one(ledger: Ledger, action: str, request: dict, succeeded: bool, transactional: bool = False) -> Writes:
    """Units of one item write (the table's doubled inside a transaction);
    a write that succeeded also moves the ledger on."""
    table = ledger.tables[request["TableName"]]
    key = request.get("Key") or {name: request["Item"][name] for name in table.keys}
    before = ledger.get(table.name, key)
    after = _change(action, request, before)
    table_units = (2 if transactional else 1) * units(
        max(item_size(before or key), item_size(after or {})), WRITE_UNIT_BYTES
    )
    if not succeeded:
        return Writes(table_units)
    ledger.put(table.name, after, key)
    # A ConditionCheck leaves the item as it was: no index entry changes.
    index_units = table.index_units(before, after)
    return Writes(table_units + index_units, index_units if transactional else 0)


_SINGLE_WRITES = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}


def _batch_actions(request: dict) -> Iterable[tuple[str, dict]]:
    for table, requests in request["RequestItems"].items():
        for entry in requests:
            if "PutRequest" in entry:
                yield "Put", {"TableName": table, **entry["PutRequest"]}
            else:
                yield "Delete", {"TableName": table, **entry["DeleteRequest"]}


def write_units(ledger: Ledger, operation: str, request: dict, succeeded: bool) -> Writes:
    """Estimated write units of one DynamoDB request (none for a read)."""
    if operation in _SINGLE_WRITES:
        return write_one(ledger, _SINGLE_WRITES[operation], request, succeeded)
    if operation == "TransactWriteItems":
        actions = [(action, body) for entry in request["TransactItems"] for action, body in entry.items()]
        return sum(
            (write_one(ledger, action, body, succeeded, transactional=True) for action, body in actions), Writes()
        )
    if operation == "BatchWriteItem":
        return sum((write_one(ledger, action, body, succeeded) for action, body in _batch_actions(request)), Writes())
    return Writes()


# -- read units ---------------------------------------------------------------------------


def _read_factor(request: dict) -> float:
    return 1.0 if request.get("ConsistentRead") else 0.5


def _charged_size(ledger: Ledger, table: str, returned: dict | None, projected: bool) -> int:
    """An item is charged at its full size, whatever a projection returned."""
    if returned is None:
        return 0
    if projected and table in ledger.tables and all(k in returned for k in ledger.tables[table].keys):
        full = ledger.get(table, {k: returned[k] for k in ledger.tables[table].keys})
        if full is not None:
            return max(item_size(full), item_size(returned))
    return item_size(returned)


def _get_units(ledger: Ledger, request: dict, response: dict) -> float:
    projected = "ProjectionExpression" in request
    size = _charged_size(ledger, request["TableName"], response.get("Item"), projected)
    return units(size, READ_UNIT_BYTES) * _read_factor(request)


def _batch_get_units(ledger: Ledger, request: dict, response: dict) -> float:
    total = 0.0
    for table, ask in request["RequestItems"].items():
        found = response.get("Responses", {}).get(table, [])
        projected = "ProjectionExpression" in ask
        sizes = [_charged_size(ledger, table, item, projected) for item in found]
        absent = len(ask["Keys"]) - len(found)
        total += (sum(units(size, READ_UNIT_BYTES) for size in sizes) + max(absent, 0)) * _read_factor(ask)
    return total


def _query_units(ledger: Ledger, request: dict, response: dict) -> float:
    projected = "ProjectionExpression" in request and "IndexName" not in request
    returned = [_charged_size(ledger, request["TableName"], item, projected) for item in response.get("Items", [])]
    filtered_out = max(response.get("ScannedCount", len(returned)) - len(returned), 0)
    mean = sum(returned) / len(returned) if returned else 0
    return units(int(sum(returned) + filtered_out * mean), READ_UNIT_BYTES) * _read_factor(request)


def _transact_get_units(ledger: Ledger, request: dict, response: dict) -> float:
    found = response.get("Responses", [])
    total = 0
    for position, entry in enumerate(request["TransactItems"]):
        returned = found[position].get("Item") if position < len(found) else None
        total += 2 * units(_charged_size(ledger, entry["Get"]["TableName"], returned, True), READ_UNIT_BYTES)
    return float(total)


_READS = {
    "GetItem": _get_units,
    "BatchGetItem": _batch_get_units,
    "Query": _query_units,
    "Scan": _query_units,
    "TransactGetItems": _transact_get_units,
}


def read_units(ledger: Ledger, operation: str, request: dict, response: dict | None) -> float:
    """Estimated read units of one DynamoDB request (0 for a write)."""
    if operation not in _READS:
        return 0.0
    return _READS[operation](ledger, request, response or {})


# -- prices -------------------------------------------------------------------------------

PRICE_DATE = "2026-12-03"
PRICE_REGION = "us-east-1"
# List prices, on-demand, US East (N. Virginia); DynamoDB's after the
# November 2024 cut. Each is dollars per one unit.
PRICES = {
    "api_gateway_request": 3.50 / 1e6,  # REST API, first 333 million a month
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000166667,  # x86
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "s3_put_class": 0.005 / 1000,  # PUT, COPY, POST, LIST (S3 Standard)
    "s3_get_class": 0.0004 / 1000,  # GET, HEAD and the rest; DELETE is free
    "kms_request": 0.03 / 10_000,
    # GetRecords made by a Lambda event source mapping are not charged.
    "dynamodb_streams_request": 0.0,
}

S3_FREE = frozenset({"DeleteObject", "DeleteBucket"})
S3_PUT_CLASS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "DeleteObjects",
        "ListObjectsV2",
        "ListObjects",
        "ListBuckets",
        "CreateBucket",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "ListObjectVersions",
    }
)


def s3_class(operation: str) -> str:
    """The S3 request tier an operation is billed in: put, get or free."""
    if operation in S3_FREE:
        return "free"
    return "put" if operation in S3_PUT_CLASS else "get"
