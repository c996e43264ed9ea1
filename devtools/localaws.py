"""moto as the local AWS, for ./scripts/run and the tests.

moto keeps DynamoDB's API but not its costs or its isolation. Seven patches
to moto, applied once by `patch_moto_dynamodb()`, make the local stack
behave like DynamoDB at any table size:

- **Serialized requests.** moto runs requests on threads with no isolation
  between them; real DynamoDB isolates transactions (serializably), which the
  write path relies on. One lock around each DynamoDB request restores that.
- **Transactions snapshot what they touch.** moto's `TransactWriteItems`
  deep-copies every table it names before it starts, to restore the copy if
  an item fails: linear in the table (16 ms a transaction at 1,000 items,
  311 ms at 20,000). Here it keeps a copy of only the items the transaction
  names, and restores only those. moto's own code still decides conditions,
  cancellation reasons and return values.
- **Queries read their partition.** moto's `Query` sorts the whole table to
  find one partition, and on a global secondary index it tests every item.
  Here each GSI keeps, per partition key value, its items in sort-key order,
  and a query hands moto only the items that can be on its page. moto's own
  code still filters, sorts and pages them.
- **Attribute values written as they are.** moto's JSON serializer walks
  every attribute value through its botocore shape (ten members, each
  looked up through alias providers): 50 ms for a page of 50 posts, inside
  the request lock. An AttributeValue is already its own wire JSON, so the
  common ones are written as they are; binary values and anything unusual
  still go through moto.
- **Model instances freed.** moto keeps every model instance it ever made
  in a list on its class (for its dashboard, and S3's reset): every item
  and every copy of one, every replaced S3 object, so memory grew with
  every write. The lists now hold their instances weakly: they still show
  every live one.
- **CopyObject honours `x-amz-copy-source-if-match`,** as S3 does (moto
  checks only if-none-match): the mirror's inbox moves an object only if it
  is still the version it read.
- **The stream keeps what is still to be read.** moto keeps every stream
  record it ever made, and every shard iterator it handed out. Stream
  requests take the same lock as DynamoDB's (a cancelled transaction takes
  its records back, see above, and no reader may see them meanwhile); a
  GetRecords drops the records before the position it reads from (DynamoDB
  trims after 24 hours; the local stack has one reader, which never goes
  back), and only the newest iterators are kept.

`before_dynamodb_request(callback)` calls `callback()` before each DynamoDB
request moto serves, outside the lock: the functional tests deliver the
stream to the consumer there, synchronously (devtools/streams.py).

Each patch checks that moto's internals still have the shape it relies on,
and raises `MotoChanged` if not, rather than quietly computing something
else. They are checked against moto 5.2 (pyproject.toml pins the range).
"""

from __future__ import annotations

import bisect
import copy
import functools
import inspect
import itertools
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

_LOCK = threading.RLock()
_STATE = threading.local()  # per thread: the transaction or query in progress
_PATCHED = "patched_by_lifeboat"
SORTABLE_TYPES = frozenset({"S", "N", "B"})
# moto cuts a page at 1 MB (RESULT_SIZE_LIMIT); short of it by more than the
# largest item, the cut cannot fall inside the items a query is handed.
SAFE_PAGE_BYTES = 1_000_000 - 400 * 1024


class MotoChanged(RuntimeError):
    """moto's internals no longer look the way a patch here expects."""


def patch_moto_dynamodb() -> None:
    """Apply the patches (idempotent)."""
    serialize_moto_dynamodb()
    keep_only_unread_stream_records()
    snapshot_only_touched_items()
    query_by_partition()
    write_plain_attribute_values()
    forget_model_instances()
    copy_source_if_match()


def _patch(owner: type, name: str, make: Callable[[Callable], Callable]) -> bool:
    """Replace owner.name with make(original), once; False if already done."""
    original = getattr(owner, name, None)
    if original is None:
        raise MotoChanged(f"{owner.__name__}.{name} is gone")
    if getattr(original, _PATCHED, False):
        return False
    replacement = functools.wraps(original)(make(original))
    setattr(replacement, _PATCHED, True)
    setattr(owner, name, replacement)
    return True


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise MotoChanged(f"moto changed: {what}; review devtools/localaws.py")


def _require_parameters(function: Callable, *names: str) -> inspect.Signature:
    signature = inspect.signature(function)
    missing = [name for name in names if name not in signature.parameters]
    _require(not missing, f"{function.__qualname__} has no parameter(s) {', '.join(missing)}")
    return signature


# -- serialized requests ------------------------------------------------------------


_BEFORE_REQUEST: list[Callable[[], None]] = []


def before_dynamodb_request(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback()` before every DynamoDB request moto serves (outside
    its lock, on the request's thread); returns what unregisters it."""
    _BEFORE_REQUEST.append(callback)
    return lambda: _BEFORE_REQUEST.remove(callback) if callback in _BEFORE_REQUEST else None


def serialize_moto_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler

    def make(original):
        def serialized(self):
            for callback in list(_BEFORE_REQUEST):
                callback()
            with _LOCK:
                return original(self)

        return serialized

    _patch(DynamoHandler, "call_action", make)


# -- the stream keeps only what is still to be read -----------------------------------


def stream_end(table_name: str, account: str = "123456789012", region: str = "us-east-1") -> int:
    """The sequence number after the last record of the in-process moto
    table's stream (it moves with every write that made a record): a cheap
    "anything new?" for a reader in the same process."""
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[account][region].tables[table_name].stream_shard
    return int(shard.starting_sequence_number) + len(shard.items) if shard is not None else 0


# Shard iterators kept (newest first out of use): a reader asks for a new one
# with every GetRecords.
KEPT_SHARD_ITERATORS = 1000


def keep_only_unread_stream_records() -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    _require(
        "self.stream_shard.get(self.sequence_number" in inspect.getsource(ShardIterator.get),
        "ShardIterator.get no longer reads the shard from its sequence number",
    )
    _require_parameters(DynamoDBStreamsBackend.get_records, "iterator_arn")

    def make_call(original):
        def serialized(self):
            with _LOCK:
                return original(self)

        return serialized

    def make_get(original):
        def get(self, *args, **kwargs):
            shard = self.stream_shard
            unread = max(0, int(self.sequence_number) - int(shard.starting_sequence_number))
            if unread:
                del shard.items[:unread]
                shard.starting_sequence_number += unread
            return original(self, *args, **kwargs)

        return get

    def make_get_records(original):
        def get_records(self, iterator_arn, *args, **kwargs):
            answer = original(self, iterator_arn, *args, **kwargs)
            while len(self.shard_iterators) > KEPT_SHARD_ITERATORS:
                self.shard_iterators.pop(next(iter(self.shard_iterators)))
            return answer

        return get_records

    _patch(DynamoDBStreamsHandler, "call_action", make_call)
    _patch(ShardIterator, "get", make_get)
    _patch(DynamoDBStreamsBackend, "get_records", make_get_records)


# -- transactions that snapshot only the items they touch -----------------------------


class _CopyWithoutTables:
    """Stands in for the `copy` module inside moto.dynamodb.models. While a
    patched transaction runs on this thread, deep-copying a whole Table (the
    snapshot moto takes) returns the table itself; every other copy is real."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value, memo=None):
        if getattr(_STATE, "transaction", False) and isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str):
        return getattr(copy, name)


TableKey = tuple[Any, Any]  # (hash DynamoType, range DynamoType or None)


def _key_of(table, attributes: dict) -> TableKey | None:
    """The table key named by a Put's Item or another operation's Key (wire
    format), or None if it names none (moto reports that error itself)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        hash_value = DynamoType(attributes[table.hash_key_attr])
        range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError, IndexError, AttributeError):
        return None
    return hash_value, range_value


def _current_item(table, key: TableKey):
    """The stored Item under `key`, or None; never adds an empty partition
    (moto's table.items is a defaultdict)."""
    items = table.items
    _require(isinstance(items, dict), "Table.items is no longer a dict")
    partition = items.get(key[0])
    if partition is None or table.range_key_attr is None:
        return partition
    return partition.get(key[1])


def _put_back(table, key: TableKey, item) -> None:
    hash_value, range_value = key
    if table.range_key_attr is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    elif item is None:
        partition = table.items.get(hash_value)
        if partition is not None:
            partition.pop(range_value, None)
            if not partition:
                del table.items[hash_value]
    else:
        table.items[hash_value][range_value] = item
    _reindex(table, key)


@dataclass
class _Snapshot:
    """Copies of the items a transaction names (None: absent), and the
    length of each touched table's stream, to put back if it fails."""

    items: dict[tuple[int, TableKey], tuple[Any, TableKey, Any]] = field(default_factory=dict)
    streams: dict[int, tuple[Any, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, backend, transact_items: Iterable[dict]) -> _Snapshot:
        snapshot = cls()
        for entry in transact_items:
            for operation in entry.values() if isinstance(entry, dict) else ():
                snapshot._add(backend, operation)
        return snapshot

    def _add(self, backend, operation) -> None:
        if not isinstance(operation, dict):
            return
        try:
            table = backend.get_table(operation.get("TableName"))
        except Exception:  # moto answers an unknown table itself
            return
        key = _key_of(table, operation.get("Item") or operation.get("Key") or {})
        if key is None or (id(table), key) in self.items:
            return
        self.items[(id(table), key)] = (table, key, copy.deepcopy(_current_item(table, key)))
        if table.stream_shard is not None and id(table) not in self.streams:
            self.streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))

    def restore(self) -> None:
        for table, key, item in self.items.values():
            _put_back(table, key, item)
        for shard, length in self.streams.values():
            del shard.items[length:]


def snapshot_only_touched_items() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    _require(
        getattr(models, "copy", None) is copy or isinstance(models.copy, _CopyWithoutTables),
        "moto.dynamodb.models no longer imports the copy module",
    )
    _require(
        "copy.deepcopy(" in source and "self.tables[table_name] = original_table_state[table_name]" in source,
        "transact_write_items no longer snapshots whole tables with copy.deepcopy",
    )
    _require_parameters(DynamoDBBackend.transact_write_items, "transact_items")

    def make(original):
        def transact_write_items(self, transact_items, *args, **kwargs):
            snapshot = _Snapshot.of(self, transact_items)
            _STATE.transaction = True
            try:
                return original(self, transact_items, *args, **kwargs)
            except BaseException:
                # moto "restored" the table to itself; put back what it changed.
                snapshot.restore()
                raise
            finally:
                _STATE.transaction = False

        return transact_write_items

    if _patch(DynamoDBBackend, "transact_write_items", make):
        models.copy = _CopyWithoutTables(Table)


# -- queries that read only their partition ------------------------------------------------


@dataclass
class _Partition:
    """One GSI partition: its items' keys in sort-key order, plus the few
    whose sort key has another type than the index declares (always offered
    to moto, which sorts and filters them itself)."""

    entries: list[tuple[Any, int, TableKey]] = field(default_factory=list)
    odd: set[TableKey] = field(default_factory=set)

    def first_at_or_after(self, sort_key) -> int:
        return bisect.bisect_left(self.entries, sort_key, key=_sort_key_of)

    def first_after(self, sort_key) -> int:
        return bisect.bisect_right(self.entries, sort_key, key=_sort_key_of)


def _sort_key_of(entry: tuple) -> Any:
    return entry[0]


@dataclass
class _GsiIndex:
    hash_attr: str
    range_attr: str
    range_type: str
    partitions: dict[Any, _Partition] = field(default_factory=dict)
    placed: dict[TableKey, tuple[Any, tuple | None]] = field(default_factory=dict)
    _sequence: itertools.count = field(default_factory=itertools.count)

    @property
    def definition(self) -> tuple[str, str, str]:
        return self.hash_attr, self.range_attr, self.range_type

    def place(self, key: TableKey, item) -> None:
        """Move `key` to where `item` (None: deleted) belongs in this index."""
        wanted = self._placement(item)
        current = self.placed.get(key)
        if current is not None and wanted is not None and current[0] == wanted[0] and current[1][0] == wanted[1]:
            return  # unchanged index keys: the common update
        if current is not None:
            self._remove(key, *current)
        if wanted is not None:
            self._insert(key, *wanted)

    def _placement(self, item) -> tuple[Any, Any] | None:
        """(partition value, sort key or `odd`) for an item in this index."""
        if item is None:
            return None
        hash_value = item.attrs.get(self.hash_attr)
        range_value = item.attrs.get(self.range_attr)
        if hash_value is None or range_value is None:
            return None  # not in the index (sparse)
        if range_value.type != self.range_type or range_value.type not in SORTABLE_TYPES:
            return hash_value, _ODD
        return hash_value, range_value.cast_value

    def _insert(self, key: TableKey, hash_value, sort_key) -> None:
        partition = self.partitions.setdefault(hash_value, _Partition())
        if sort_key is _ODD:
            partition.odd.add(key)
            self.placed[key] = (hash_value, (_ODD,))
            return
        entry = (sort_key, next(self._sequence), key)
        bisect.insort(partition.entries, entry)
        self.placed[key] = (hash_value, entry)

    def _remove(self, key: TableKey, hash_value, entry) -> None:
        self.placed.pop(key, None)
        partition = self.partitions[hash_value]
        if entry[0] is _ODD:
            partition.odd.discard(key)
        else:
            at = bisect.bisect_left(partition.entries, entry[:2])
            _require(partition.entries[at] == entry, "a GSI entry went missing")
            del partition.entries[at]
        if not partition.entries and not partition.odd:
            del self.partitions[hash_value]


_ODD = object()  # the sort key of an item whose sort key has an unexpected type
_NOTHING = object()  # equal to no sort key


def _indexes(table) -> dict[str, _GsiIndex]:
    """This table's GSI indexes, built from its items on first use (and
    again if its GSIs have changed since)."""
    declared = {attribute["AttributeName"]: attribute["AttributeType"] for attribute in table.attr}
    wanted = {}
    for gsi in table.global_indexes:
        hashes = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "HASH"]
        ranges = [k["AttributeName"] for k in gsi.schema if k["KeyType"] == "RANGE"]
        if len(hashes) == 1 and len(ranges) == 1:
            wanted[gsi.name] = (hashes[0], ranges[0], declared.get(ranges[0], "S"))
    built = table.__dict__.get("_lifeboat_gsi")
    if built is None or {name: index.definition for name, index in built.items()} != wanted:
        built = {name: _GsiIndex(*definition) for name, definition in wanted.items()}
        for item in _every_item(table):
            for index in built.values():
                index.place((item.hash_key, item.range_key), item)
        table.__dict__["_lifeboat_gsi"] = built
    return built


def _every_item(table) -> list:
    if table.range_key_attr is None:
        return list(table.items.values())
    return [item for partition in table.items.values() for item in partition.values()]


def _reindex(table, key: TableKey) -> None:
    indexes = table.__dict__.get("_lifeboat_gsi")
    if indexes:
        item = _current_item(table, key)
        for index in indexes.values():
            index.place(key, item)


def _reindex_named(backend, table_name: str, key: dict) -> None:
    try:
        table = backend.get_table(table_name)
    except Exception:  # no such table: nothing was written
        return
    table_key = _key_of(table, key)
    if table_key is not None:
        _reindex(table, table_key)


def _page_candidates(table, query: dict) -> list | None:
    """The items that can be on this query's page (a superset of it), or
    None when only moto's full scan can tell."""
    if query.get("filter_kwargs"):
        return None  # the legacy QueryFilter: rare, left to moto
    conditions = query.get("range_key_conditions") or []
    if len(conditions) > 1:
        return None
    if query.get("index_name") is None:
        hash_value = query.get("hash_key")
        if hash_value is None:
            return None
        partition = table.items.get(hash_value)
        if partition is None:
            return []
        return [partition] if table.range_key_attr is None else list(partition.values())
    index = _indexes(table).get(query["index_name"])
    hash_conditions = query.get("hash_key_conditions") or []
    if index is None or len(hash_conditions) != 1 or hash_conditions[0][0] != index.hash_attr:
        return None
    if conditions and conditions[0][0] != index.range_attr:
        return None
    partition = index.partitions.get(hash_conditions[0][1])
    if partition is None:
        return []
    return _page_of(table, index, partition, query)


def _page_of(table, index: _GsiIndex, partition: _Partition, query: dict) -> list:
    """The items moto's scan of the partition looks at before it stops.

    moto walks the partition in scan order from the start key, takes the
    items that meet the sort-key condition, and stops at the first item of
    any kind once it holds `limit` of them (that item sets the
    LastEvaluatedKey), or once the next item would pass 1 MB. So: every item
    from the start of the condition's slice until `limit` matches beyond the
    start key are in hand, then the rest of their sort key (moto orders ties
    by the table key, not as stored here), then one more item (moto may stop
    on it). Near 1 MB, the whole partition.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType

    comparison, operands = query.get("range_comparison"), query.get("range_objs") or []
    low, high = _bounds(partition, comparison, operands)
    forward = query.get("scan_index_forward", True) is not False
    start_key = query.get("exclusive_start_key") or {}
    start = _NOTHING
    if index.range_attr in start_key:
        start = DynamoType(start_key[index.range_attr]).cast_value
        if forward:
            low = max(low, partition.first_at_or_after(start))
        else:
            high = min(high, partition.first_after(start))
    limit, entries = query.get("limit"), partition.entries
    page: list = []
    counted, size, stop_after = 0, 0, _NOTHING
    for at in range(low, len(entries)) if forward else range(high - 1, -1, -1):
        sort_key, _, key = entries[at]
        item = _current_item(table, key)
        if item is None:
            continue
        page.append(item)
        if (stop_after is not _NOTHING and sort_key != stop_after) or not low <= at < high:
            break  # the item moto may stop on
        if comparison and not item.attrs[index.range_attr].compare(comparison, operands):
            continue
        size += item.size()
        if size > SAFE_PAGE_BYTES:
            return _whole(table, partition)
        if sort_key != start:  # moto skips the start key, and perhaps its ties
            counted += 1
        if limit is not None and counted >= limit:
            stop_after = sort_key
    return page + _odd_items(table, partition)


def _whole(table, partition: _Partition) -> list:
    items = (_current_item(table, key) for _, _, key in partition.entries)
    return [item for item in items if item is not None] + _odd_items(table, partition)


def _odd_items(table, partition: _Partition) -> list:
    items = (_current_item(table, key) for key in partition.odd)
    return [item for item in items if item is not None]


def _bounds(partition: _Partition, comparison: str | None, operands: list) -> tuple[int, int]:
    """A slice of the partition's entries that holds every one meeting the
    condition (it may hold a few that do not: the caller tests each)."""
    low, high = 0, len(partition.entries)
    if not comparison or not operands:
        return low, high
    values = [operand.cast_value for operand in operands]
    comparison = comparison.upper()
    if comparison in ("EQ", "=", "BETWEEN", "GE", ">=", "GT", ">", "BEGINS_WITH"):
        low = partition.first_at_or_after(values[0])
    if comparison in ("EQ", "=", "LE", "<=", "LT", "<"):
        high = partition.first_after(values[0])
    elif comparison == "BETWEEN" and len(values) == 2:
        high = partition.first_after(values[1])
    elif comparison == "BEGINS_WITH" and isinstance(values[0], str) and values[0]:
        prefix = values[0]
        if ord(prefix[-1]) < sys.maxunicode:
            high = partition.first_at_or_after(prefix[:-1] + chr(ord(prefix[-1]) + 1))
    return low, high


def query_by_partition() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.table import Table

    parameters = ("hash_key", "range_comparison", "range_objs", "limit", "exclusive_start_key")
    parameters += ("scan_index_forward", "index_name", "hash_key_conditions", "range_key_conditions")
    query_signature = _require_parameters(Table.query, *parameters, "filter_kwargs")
    _require("self.all_items()" in inspect.getsource(Table.query), "Table.query no longer reads self.all_items()")
    _require(getattr(table_module, "RESULT_SIZE_LIMIT", None) == 1_000_000, "moto's page size limit changed")
    _require_parameters(Table.put_item, "item_attrs")
    _require_parameters(Table.delete_item, "hash_key", "range_key")
    _require_parameters(DynamoDBBackend.update_item, "table_name", "key")

    def make_query(original):
        def query(self, *args, **kwargs):
            bound = query_signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            candidates = _page_candidates(self, bound.arguments)
            if candidates is None:
                return original(self, *args, **kwargs)
            _STATE.candidates = (self, candidates)
            try:
                return original(self, *args, **kwargs)
            finally:
                _STATE.candidates = None

        return query

    def make_all_items(original):
        def all_items(self):
            hint = getattr(_STATE, "candidates", None)
            if hint is None or hint[0] is not self:
                return original(self)
            return sorted(hint[1], key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

        return all_items

    def make_put_item(original):
        def put_item(self, *args, **kwargs):
            item = original(self, *args, **kwargs)
            _reindex(self, (item.hash_key, item.range_key))
            return item

        return put_item

    def make_delete_item(original):
        def delete_item(self, hash_key, range_key, *args, **kwargs):
            try:
                return original(self, hash_key, range_key, *args, **kwargs)
            finally:
                _reindex(self, (hash_key, range_key))

        return delete_item

    def make_update_item(original):
        def update_item(self, table_name, key, *args, **kwargs):
            # moto updates the stored item in place, even when it then fails.
            try:
                return original(self, table_name, key, *args, **kwargs)
            finally:
                _reindex_named(self, table_name, key)

        return update_item

    _patch(Table, "query", make_query)
    _patch(Table, "all_items", make_all_items)
    _patch(Table, "put_item", make_put_item)
    _patch(Table, "delete_item", make_delete_item)
    _patch(DynamoDBBackend, "update_item", make_update_item)


# -- model instances freed when nothing else holds them ----------------------------


class _WeakInstances:
    """A model class's `instances_tracked`, holding its instances weakly.

    moto appends every model instance it ever makes to its class's list (for
    the server's /moto-api dashboard, and so that S3's reset can close the
    files of keys it no longer holds): every item, every copy of one, every
    S3 object a PUT replaced, for as long as the process runs. Here the
    list's readers still see every live instance, in order of creation; an
    instance nothing else holds is freed."""

    def __init__(self, instances: Iterable = ()) -> None:
        self._refs: dict[int, weakref.ref] = {}
        self._kept: list = []  # instances of a class without weak references
        for instance in instances:
            self.append(instance)

    def append(self, instance) -> None:
        try:
            ref = weakref.ref(instance, self._forget)
        except TypeError:
            self._kept.append(instance)
            return
        self._refs[id(ref)] = ref

    def _forget(self, ref: weakref.ref) -> None:
        self._refs.pop(id(ref), None)

    def __iter__(self):
        live = (ref() for ref in list(self._refs.values()))  # a copy: other threads append meanwhile
        return itertools.chain([instance for instance in live if instance is not None], list(self._kept))

    def __len__(self) -> int:
        return sum(1 for _ in self)


_REGISTRY = "_lifeboat_instances"


class _TrackedWeakly:
    """`instances_tracked` on moto's model metaclass: reads and assignments
    of a model class's list (moto assigns [] on every reset) go to its
    _WeakInstances."""

    def __get__(self, cls, metaclass=None):
        if cls is None:
            return self
        registry = cls.__dict__.get(_REGISTRY)
        if registry is None:  # BaseModel itself tracks nothing
            raise AttributeError(f"{cls.__name__} has no instances_tracked")
        return registry

    def __set__(self, cls, instances) -> None:
        type.__setattr__(cls, _REGISTRY, _WeakInstances(instances))


def _model_classes(base: type) -> list[type]:
    found, frontier = [], [base]
    while frontier:
        for subclass in type.__subclasses__(frontier.pop()):
            if subclass not in found:
                found.append(subclass)
                frontier.append(subclass)
    return found


def forget_model_instances() -> None:
    """Make every moto model class track its instances weakly (see _WeakInstances)."""
    from moto.core import base_backend, common_models, model_instances

    meta, base = base_backend.InstanceTrackerMeta, common_models.BaseModel
    _require(
        "cls.instances_tracked.append(instance)" in inspect.getsource(base.__new__),
        "BaseModel.__new__ no longer appends to cls.instances_tracked",
    )
    _require(
        "cls.instances_tracked" in inspect.getsource(meta.__new__)
        and "model.instances_tracked = []" in inspect.getsource(model_instances.reset_model_data),
        "model classes no longer get their own instances_tracked list",
    )
    if isinstance(meta.__dict__.get("instances_tracked"), _TrackedWeakly):
        return
    with _LOCK:
        for cls in _model_classes(base):
            listed = cls.__dict__.get("instances_tracked")
            _require(isinstance(listed, list), f"{cls.__name__}.instances_tracked is not a list")
            type.__setattr__(cls, _REGISTRY, _WeakInstances(listed))
            type.__delattr__(cls, "instances_tracked")
        meta.instances_tracked = _TrackedWeakly()


# -- attribute values serialized as they are ----------------------------------------

# The AttributeValue members whose value moto's JSON serializer copies as it
# is, and the type it must have; B and BS (base64) are left to moto.
_PLAIN_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_PLAIN_SETS = frozenset({"SS", "NS"})
_ATTRIBUTE_VALUE_MEMBERS = {
    "S": "string",
    "N": "string",
    "B": "blob",
    "SS": "list",
    "NS": "list",
    "BS": "list",
    "M": "map",
    "L": "list",
    "NULL": "boolean",
    "BOOL": "boolean",
}


class _NotPlain(Exception):
    """A value that moto's serializer must write itself."""


def _plain_attribute_value(value) -> dict:
    """What moto's serializer writes for an AttributeValue, here already a
    `{type: value}` dict (DynamoResult made it one); _NotPlain if it is
    anything else than the common case."""
    if type(value) is not dict or len(value) != 1:
        raise _NotPlain
    ((kind, inner),) = value.items()
    if type(inner) is _PLAIN_SCALARS.get(kind):
        return {kind: inner}
    if kind in _PLAIN_SETS and type(inner) is list and all(type(member) is str for member in inner):
        return {kind: list(inner)}
    if kind == "M" and type(inner) is dict and "" not in inner:  # moto writes an empty name's value unwrapped
        return {"M": {name: _plain_attribute_value(member) for name, member in inner.items()}}
    if kind == "L" and type(inner) is list:
        return {"L": [_plain_attribute_value(member) for member in inner]}
    raise _NotPlain


def write_plain_attribute_values() -> None:
    """moto serializes each attribute value by walking its botocore shape
    (ten members, each looked up through alias providers): about 1 ms an
    item, 50 ms for a page of 50 posts, all inside the request lock. The
    value is already its own wire JSON, so it is written as it is."""
    from moto.core.responses import get_service_model
    from moto.core.serialize import BaseJSONSerializer, ResponseSerializer

    shape = get_service_model("dynamodb").shape_for("AttributeValue")
    members = {name: member.type_name for name, member in shape.members.items()}
    _require(members == _ATTRIBUTE_VALUE_MEMBERS, f"DynamoDB's AttributeValue shape is now {members}")
    _require_parameters(BaseJSONSerializer._serialize_type_structure, "serialized", "value", "shape", "key")
    _require(
        "self._value_picker = value_picker" in inspect.getsource(ResponseSerializer.__init__),
        "ResponseSerializer no longer keeps its value picker",
    )

    def make(original):
        def _serialize_type_structure(self, serialized, value, shape, key):
            if (
                key
                and shape.name == "AttributeValue"
                and self.service_model.service_name == "dynamodb"
                # a response transformer could apply inside the value
                and not getattr(self._value_picker, "response_transformers", None)
            ):
                try:
                    plain = _plain_attribute_value(value)
                except _NotPlain:
                    pass
                else:
                    self._default_serialize(serialized, plain, shape, key)
                    return None
            return original(self, serialized, value, shape, key)

        return _serialize_type_structure

    _patch(BaseJSONSerializer, "_serialize_type_structure", make)


def start_moto_server():
    """An in-process moto server on a free loopback port; returns (server, url)."""
    from moto.server import ThreadedMotoServer

    patch_moto_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{server._server.server_port}"


# -- CopyObject's x-amz-copy-source-if-match -------------------------------------


def copy_source_if_match() -> None:
    from moto.s3.exceptions import PreconditionFailed
    from moto.s3.responses import S3Response

    def make(original):
        def copy_object(self):
            wanted = self.headers.get("x-amz-copy-source-if-match")
            if wanted is not None:
                source = unquote(urlparse(self.headers["x-amz-copy-source"]).path).lstrip("/")
                bucket, key = source.split("/", 1)
                current = self.backend.get_object(bucket, key)
                if current is not None and wanted not in (current.etag, current.etag.strip('"')):
                    raise PreconditionFailed(failed_condition="x-amz-copy-source-If-Match")
            return original(self)

        return copy_object

    _patch(S3Response, "copy_object", make)
