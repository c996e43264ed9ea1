"""The moto patches of devtools/localaws.py keep moto's DynamoDB semantics
(and DynamoDB's isolation) while touching only the items a request names."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devtools import localaws

TABLE = "patched"
INDEX = "ByGroup"


def _key_schema(hash_attr: str, range_attr: str) -> list[dict]:
    return [{"AttributeName": hash_attr, "KeyType": "HASH"}, {"AttributeName": range_attr, "KeyType": "RANGE"}]


def _definition() -> dict:
    return {
        "TableName": TABLE,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": _key_schema("PK", "SK"),
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GPK", "GSK")],
        "GlobalSecondaryIndexes": [
            {"IndexName": INDEX, "KeySchema": _key_schema("GPK", "GSK"), "Projection": {"ProjectionType": "ALL"}}
        ],
    }


ABSENT = "attribute_not_exists(PK)"


@pytest.fixture
def dynamodb(aws_credentials):
    from moto import mock_aws

    from chalicelib.aws import clients as aws

    localaws.patch_moto_dynamodb()
    with mock_aws():
        client = aws.new_client("dynamodb")
        client.create_table(**_definition())
        yield client


def _backend():
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"]


def _item(pk: str, sk: str = "A", **attributes: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}, **{name: {"S": value} for name, value in attributes.items()}}


def _key(pk: str, sk: str = "A") -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def _stored(client, pk: str, sk: str = "A") -> dict | None:
    return client.get_item(TableName=TABLE, Key=_key(pk, sk), ConsistentRead=True).get("Item")


def _group(client, group: str) -> list[dict]:
    reply = client.query(
        TableName=TABLE,
        IndexName=INDEX,
        KeyConditionExpression="GPK = :g",
        ExpressionAttributeValues={":g": {"S": group}},
    )
    return reply["Items"]


def _cancelled(client, operations: list[dict]) -> list[dict]:
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=operations)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    return raised.value.response["CancellationReasons"]


def test_a_cancelled_transaction_puts_back_the_items_it_changed(dynamodb):
    # Given an item in a GSI partition, and another that a condition will find,
    dynamodb.put_item(TableName=TABLE, Item=_item("a", GPK="g", GSK="1", n="old"))
    dynamodb.put_item(TableName=TABLE, Item=_item("c"))

    # when a transaction updates it, adds a new one to the GSI, then fails its condition,
    reasons = _cancelled(
        dynamodb,
        [
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key("a"),
                    "UpdateExpression": "SET n = :n, GSK = :s",
                    "ExpressionAttributeValues": {":n": {"S": "new"}, ":s": {"S": "9"}},
                }
            },
            {"Put": {"TableName": TABLE, "Item": _item("b", GPK="g", GSK="2")}},
            {"ConditionCheck": {"TableName": TABLE, "Key": _key("c"), "ConditionExpression": ABSENT}},
        ],
    )

    # then nothing of it remains, in the table or in the index.
    assert [reason["Code"] for reason in reasons] == ["None", "None", "ConditionalCheckFailed"]
    assert _stored(dynamodb, "a") == _item("a", GPK="g", GSK="1", n="old")
    assert _stored(dynamodb, "b") is None
    assert _group(dynamodb, "g") == [_item("a", GPK="g", GSK="1", n="old")]


def test_a_cancelled_transaction_keeps_a_write_that_landed_on_another_item_meanwhile(dynamodb, monkeypatch):
    # Given a transaction whose second item fails its condition, and another
    # client's write to an unrelated item landing while the transaction runs,
    from moto.dynamodb.models import DynamoDBBackend

    dynamodb.put_item(TableName=TABLE, Item=_item("taken"))
    backend = _backend()
    read_item = DynamoDBBackend.get_item
    reads = []

    def read_while_another_client_writes(self, table_name, keys, *args, **kwargs):
        reads.append(keys)
        if len(reads) == 2:
            self.put_item(table_name, _item("bystander"))
        return read_item(self, table_name, keys, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "get_item", read_while_another_client_writes)

    # when the transaction is cancelled,
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        backend.transact_write_items(
            [
                {"Put": {"TableName": TABLE, "Item": _item("new")}},
                {"Put": {"TableName": TABLE, "Item": _item("taken"), "ConditionExpression": ABSENT}},
            ]
        )
    monkeypatch.undo()

    # then its own write is undone, and the other client's write stays.
    assert _stored(dynamodb, "new") is None
    assert _stored(dynamodb, "bystander") == _item("bystander")


def test_a_transaction_copies_no_whole_table(dynamodb, monkeypatch):
    from moto.dynamodb.models.table import Table

    for n in range(20):
        dynamodb.put_item(TableName=TABLE, Item=_item(f"p{n}"))

    def refuse(self, memo):
        raise AssertionError("a whole table was deep-copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)

    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": _item("p20")}}])
    _cancelled(
        dynamodb,
        [{"Put": {"TableName": TABLE, "Item": _item("p1"), "ConditionExpression": ABSENT}}],
    )

    assert _stored(dynamodb, "p20") == _item("p20")


def test_a_cancelled_transaction_leaves_nothing_in_the_tables_stream(dynamodb):
    dynamodb.update_table(
        TableName=TABLE, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    dynamodb.put_item(TableName=TABLE, Item=_item("before"))
    _cancelled(
        dynamodb,
        [
            {"Put": {"TableName": TABLE, "Item": _item("undone")}},
            {"Put": {"TableName": TABLE, "Item": _item("before"), "ConditionExpression": ABSENT}},
        ],
    )

    # moto's DynamoDB Streams API is not served by mock_aws here: read its shard.
    records = [record.record for record in _backend().get_table(TABLE).stream_shard.items]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["PK"]["S"]) for r in records] == [("INSERT", "before")]


def test_cancellation_reasons_carry_the_old_item_when_asked(dynamodb):
    dynamodb.put_item(TableName=TABLE, Item=_item("held", claimant="someone"))

    reasons = _cancelled(
        dynamodb,
        [
            {"Put": {"TableName": TABLE, "Item": _item("free")}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key("held"),
                    "UpdateExpression": "SET claimant = :me",
                    "ConditionExpression": "attribute_not_exists(claimant)",
                    "ExpressionAttributeValues": {":me": {"S": "me"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
    )

    assert reasons[0]["Code"] == "None"
    assert reasons[1]["Code"] == "ConditionalCheckFailed"
    assert reasons[1]["Item"] == _item("held", claimant="someone")
    assert _stored(dynamodb, "free") is None


def test_a_transaction_naming_one_item_twice_changes_nothing(dynamodb):
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": _item("twice", GPK="g", GSK="1")}},
                {"Delete": {"TableName": TABLE, "Key": _key("twice")}},
            ]
        )

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert _stored(dynamodb, "twice") is None
    assert _group(dynamodb, "g") == []


def test_writes_move_items_in_and_out_of_the_index(dynamodb):
    # Given two items of one GSI partition,
    dynamodb.put_item(TableName=TABLE, Item=_item("x", GPK="g", GSK="1"))
    dynamodb.put_item(TableName=TABLE, Item=_item("y", GPK="g", GSK="2"))
    assert [i["PK"]["S"] for i in _group(dynamodb, "g")] == ["x", "y"]

    # when one leaves the index in a transaction, the other moves partition, and a third arrives,
    dynamodb.transact_write_items(
        TransactItems=[
            {"Update": {"TableName": TABLE, "Key": _key("x"), "UpdateExpression": "REMOVE GPK, GSK"}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key("y"),
                    "UpdateExpression": "SET GPK = :h",
                    "ExpressionAttributeValues": {":h": {"S": "h"}},
                }
            },
            {"Put": {"TableName": TABLE, "Item": _item("z", GPK="g", GSK="0")}},
        ]
    )
    dynamodb.delete_item(TableName=TABLE, Key=_key("x"))

    # then each index partition lists exactly what it holds.
    assert [i["PK"]["S"] for i in _group(dynamodb, "g")] == ["z"]
    assert [i["PK"]["S"] for i in _group(dynamodb, "h")] == ["y"]


def test_a_changed_moto_is_refused_loudly(monkeypatch):
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self, transact_items):
        """A moto that no longer snapshots whole tables."""

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)

    with pytest.raises(localaws.MotoChanged, match="transact_write_items"):
        localaws.snapshot_only_touched_items()


# -- the patched Query answers exactly what moto's own full scan answers --------------

PARTITIONS = ["p0", "p1", "p2"]
SORT_KEYS = ["a", "b", "c", "d"]
GROUPS = ["g0", "g1"]
GROUP_SORT_KEYS = ["1", "2", "2x", "3"]  # ties are likely: few values for many items
COMPARISONS = [None, "=", "<", "<=", ">", ">=", "BETWEEN", "BEGINS_WITH"]

# Most items are in the index, most of them in one partition, so pages and ties are common.
_written_item = st.fixed_dictionaries(
    {
        "PK": st.sampled_from(PARTITIONS),
        "SK": st.sampled_from(SORT_KEYS),
        "GPK": st.sampled_from([*GROUPS, GROUPS[0], GROUPS[0], None]),
        "GSK": st.sampled_from([*GROUP_SORT_KEYS, None]),
    }
).map(lambda item: {name: value for name, value in item.items() if value is not None})
_write = st.one_of(
    st.tuples(st.just("put"), _written_item),
    st.tuples(st.just("delete"), _written_item),
    st.tuples(st.just("leave_index"), _written_item),
    st.tuples(st.just("transaction"), st.lists(_written_item, min_size=1, max_size=3), st.booleans()),
)
_query = st.fixed_dictionaries(
    {
        "on_index": st.booleans(),
        "partition": st.integers(0, 2),
        "comparison": st.sampled_from(COMPARISONS),
        "operands": st.lists(st.integers(0, 3), min_size=2, max_size=2).map(sorted),  # ranks of sort keys
        "limit": st.sampled_from([None, 1, 1, 2, 3]),
        "forward": st.booleans(),
    }
)


def _wire(attributes: dict) -> dict:
    return {name: {"S": value} for name, value in attributes.items()}


def _apply(client, write) -> None:
    kind, item = write[0], write[1]
    if kind == "put":
        client.put_item(TableName=TABLE, Item=_wire(item))
    elif kind == "delete":
        client.delete_item(TableName=TABLE, Key=_key(item["PK"], item["SK"]))
    elif kind == "leave_index":
        client.update_item(TableName=TABLE, Key=_key(item["PK"], item["SK"]), UpdateExpression="REMOVE GSK")
    else:
        puts = {(i["PK"], i["SK"]): i for i in item}.values()  # one operation per item
        operations = [{"Put": {"TableName": TABLE, "Item": _wire(i)}} for i in puts]
        if write[2]:  # make it fail at the end
            operations.append(
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": _key("never", "never"),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                }
            )
        try:
            client.transact_write_items(TransactItems=operations)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "TransactionCanceledException"


def _query_arguments(query: dict, start_key) -> tuple[tuple, dict]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if query["on_index"]:
        hash_attr, range_attr, value, sort_keys = "GPK", "GSK", GROUPS[query["partition"] % 2], GROUP_SORT_KEYS
    else:
        hash_attr, range_attr, value, sort_keys = "PK", "SK", PARTITIONS[query["partition"]], SORT_KEYS
    comparison = query["comparison"]
    ranks = query["operands"][: 2 if comparison == "BETWEEN" else 1]
    operands = [DynamoType({"S": sort_keys[rank]}) for rank in ranks]
    if comparison is None:
        operands = []
    hash_value = DynamoType({"S": value})
    arguments = (hash_value, comparison, operands, query["limit"], start_key, query["forward"], [])
    keywords = {
        "index_name": INDEX if query["on_index"] else None,
        "hash_key_conditions": [(hash_attr, hash_value)],
        "range_key_conditions": [(range_attr, comparison, operands)] if comparison else [],
    }
    return arguments, keywords


def _pages(query_function, table, query: dict) -> list:
    """Every page of the query, followed through LastEvaluatedKey."""
    pages, start_key = [], None
    for _ in range(40):
        arguments, keywords = _query_arguments(query, start_key)
        items, scanned, last_key = query_function(table, *arguments, **keywords)
        last = {name: value.to_json() for name, value in last_key.items()} if last_key else None
        pages.append(([item.to_json() for item in items], scanned, last))
        if last is None:
            return pages
        start_key = last
    raise AssertionError("the query never reached its last page")


def _group_items(*group_sort_keys: str) -> list:
    """Puts into partition g0, each later one with a smaller table key, so
    the order they were written in is not moto's order for ties."""
    return [
        ("put", {"PK": PARTITIONS[-1 - n % 3], "SK": SORT_KEYS[-1 - n // 3], "GPK": "g0", "GSK": group_sort_key})
        for n, group_sort_key in enumerate(group_sort_keys)
    ]


def _on_group(comparison: str | None, rank: int, limit: int | None, forward: bool) -> dict:
    query = {"on_index": True, "partition": 0, "comparison": comparison, "operands": [rank, rank]}
    return {**query, "limit": limit, "forward": forward}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Paging one by one through sort keys that tie, the start key inside a tie.
@example(
    writes=_group_items("1", "1", "1", "2", "3", "3"),
    queries=[_on_group(None, 0, 1, True), _on_group(None, 0, 1, False)],
)
# Conditions met by several tied items, and by a prefix.
@example(
    writes=_group_items("1", "2", "2", "2", "2x", "3"),
    queries=[
        _on_group("=", 1, 2, True),
        _on_group("<=", 1, 2, False),
        _on_group("BEGINS_WITH", 1, None, True),
        {**_on_group("BETWEEN", 0, None, True), "operands": [0, 1]},
    ],
)
@given(writes=st.lists(_write, min_size=3, max_size=30), queries=st.lists(_query, min_size=1, max_size=6))
def test_a_query_answers_what_motos_full_scan_answers(dynamodb, writes, queries):
    from moto.dynamodb.models.table import Table

    dynamodb.delete_table(TableName=TABLE)
    dynamodb.create_table(**_definition())
    for write in writes:
        _apply(dynamodb, write)
    table = _backend().get_table(TABLE)

    for query in queries:
        assert _pages(Table.query, table, query) == _pages(Table.query.__wrapped__, table, query)


# -- model instances: freed once moto no longer holds them ---------------------------


def _tracked(model: type, matches) -> list:
    import gc

    gc.collect()
    return [instance for instance in model.instances_tracked if matches(instance)]


def _item_named(pk: str):
    return lambda item: item.hash_key.value == pk


def _update(client, pk: str, n: int) -> None:
    client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key(pk),
                    "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": str(n)}},
                }
            }
        ]
    )


def test_rewriting_an_item_leaves_no_copy_of_it_behind(dynamodb):
    from moto.dynamodb.models.dynamo_type import Item

    for n in range(5):
        _update(dynamodb, "rewritten", n)
        dynamodb.put_item(TableName=TABLE, Item=_item("replaced", n=str(n)))
    after_a_few = len(_tracked(Item, _item_named("rewritten"))), len(_tracked(Item, _item_named("replaced")))

    for n in range(5, 60):
        _update(dynamodb, "rewritten", n)
        dynamodb.put_item(TableName=TABLE, Item=_item("replaced", n=str(n)))

    # moto made copies on every write; only the stored items are left, as after the first few writes.
    assert (len(_tracked(Item, _item_named("rewritten"))), len(_tracked(Item, _item_named("replaced")))) == after_a_few
    assert after_a_few == (1, 1)
    assert _stored(dynamodb, "rewritten") == {**_key("rewritten"), "n": {"N": "59"}}


def test_an_overwritten_s3_object_is_freed_and_the_current_one_kept(dynamodb):
    from moto.s3.models import FakeKey

    from chalicelib.aws import clients as aws

    s3 = aws.new_client("s3")
    s3.create_bucket(Bucket="overwritten")
    for n in range(30):
        s3.put_object(Bucket="overwritten", Key="feed.rss", Body=f"version {n}".encode())

    tracked = _tracked(FakeKey, lambda key: key.bucket_name == "overwritten")
    assert [key.value for key in tracked] == [b"version 29"]
    assert s3.get_object(Bucket="overwritten", Key="feed.rss")["Body"].read() == b"version 29"


def test_moto_still_lists_every_live_instance_and_its_reset_keeps_tracking_weak(dynamodb):
    # Given moto's own reset of its tracking (as mock_aws and /moto-api/reset do),
    from moto.core.model_instances import reset_model_data
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    reset_model_data()

    # when items are written and one of them rewritten,
    for name in ("kept", "other"):
        dynamodb.put_item(TableName=TABLE, Item=_item(name))
    for n in range(20):
        _update(dynamodb, "kept", n)

    # then moto's list (its dashboard's source) holds exactly the stored items.
    table = _backend().get_table(TABLE)
    stored = [table.get_item(DynamoType({"S": name}), DynamoType({"S": "A"})) for name in ("kept", "other")]
    assert _tracked(Item, lambda item: item.hash_key.value in ("kept", "other")) == stored
    assert all(any(tracked is item for tracked in Item.instances_tracked) for item in stored)


def test_a_moto_that_tracks_instances_differently_is_refused(monkeypatch):
    from moto.core.common_models import BaseModel

    def untracked_new(cls, *args, **kwargs):
        """A moto that keeps no instance list."""
        return object.__new__(cls)

    monkeypatch.setattr(BaseModel, "__new__", untracked_new)

    with pytest.raises(localaws.MotoChanged, match="instances_tracked"):
        localaws.forget_model_instances()


# -- attribute values: written as they are, exactly as moto writes them -----------------


def _query_body(result: dict) -> str:
    """moto's Query response body for `result` (attribute values as DynamoType)."""
    from moto.core.responses import ActionContext, get_service_model
    from moto.core.serialize import get_serializer_class
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    model = get_service_model("dynamodb")
    context = ActionContext(
        model, model.operation_model("Query"), get_serializer_class("dynamodb", "json"), DynamoHandler()
    )
    return DynamoResult(result).execute_result(context)[2]


def _unpatched_query_body(result: dict) -> str:
    from moto.core.serialize import BaseJSONSerializer

    patched = BaseJSONSerializer._serialize_type_structure
    BaseJSONSerializer._serialize_type_structure = patched.__wrapped__
    try:
        return _query_body(result)
    finally:
        BaseJSONSerializer._serialize_type_structure = patched


def _wire_of(kind: str):
    import base64

    def wrap(value):
        if kind == "B":
            return {"B": base64.b64encode(value).decode()}
        if kind == "BS":
            return {"BS": [base64.b64encode(member).decode() for member in value]}
        return {kind: value}

    return wrap


_numbers = st.one_of(st.integers(), st.decimals(allow_nan=False, allow_infinity=False, places=3)).map(str)
_scalar_value = st.one_of(
    st.text().map(_wire_of("S")),
    _numbers.map(_wire_of("N")),
    st.binary().map(_wire_of("B")),
    st.booleans().map(_wire_of("BOOL")),
    st.just({"NULL": True}),
    st.lists(st.text(), min_size=1, max_size=3, unique=True).map(_wire_of("SS")),
    st.lists(_numbers, min_size=1, max_size=3, unique=True).map(_wire_of("NS")),
    st.lists(st.binary(), min_size=1, max_size=3, unique=True).map(_wire_of("BS")),
)
_attribute_value = st.recursive(
    _scalar_value,
    lambda values: st.one_of(
        st.dictionaries(st.text(max_size=4), values, max_size=3).map(_wire_of("M")),
        st.lists(values, max_size=3).map(_wire_of("L")),
    ),
    max_leaves=8,
)
# Values no DynamoType makes, which moto's serializer still writes in its own way.
_odd_value = st.sampled_from(
    [{}, {"S": None}, {"S": 5}, {"N": 12}, {"S": "a", "N": "1"}, {"M": {"x": None}}, {"L": [None]}, {"SS": [1]}, "S"]
)


@settings(max_examples=200, deadline=None)
# moto writes a map member with an empty name in its own way.
@example(items=[{"m": {"M": {"": {"S": ""}}}}], odd=[])
@given(
    items=st.lists(st.dictionaries(st.text(min_size=1, max_size=6), _attribute_value, max_size=5), max_size=4),
    odd=st.lists(st.dictionaries(st.text(min_size=1, max_size=3), _odd_value, min_size=1, max_size=2), max_size=2),
)
def test_a_query_answer_is_written_exactly_as_moto_writes_it(items, odd):
    from moto.dynamodb.models.dynamo_type import DynamoType

    stored = [{name: DynamoType(value) for name, value in item.items()} for item in items]
    result = {"Count": len(items), "ScannedCount": len(items), "Items": stored + odd}

    assert _query_body(result) == _unpatched_query_body(result)


def test_a_query_answer_does_not_walk_each_attribute_value_member_by_member(dynamodb, monkeypatch):
    from moto.core.serialize import ResponseSerializer

    written = [_item(f"p{n}", GPK="g", GSK=str(n), text=f"post {n}", state="pending") for n in range(20)]
    for item in written:
        dynamodb.put_item(TableName=TABLE, Item=item)
    looked_up = []
    get_value = ResponseSerializer.get_value

    def counting_get_value(self, value, key, shape):
        looked_up.append(shape.name)
        return get_value(self, value, key, shape)

    monkeypatch.setattr(ResponseSerializer, "get_value", counting_get_value)

    assert _group(dynamodb, "g") == sorted(written, key=lambda item: item["GSK"]["S"])
    assert "StringAttributeValue" not in looked_up
    assert len(looked_up) < 20  # the answer's own fields; 20 items x 6 attributes x 10 members without the patch


def test_a_moto_that_serializes_structures_differently_is_refused(monkeypatch):
    from moto.core.serialize import BaseJSONSerializer

    def _serialize_type_structure(self, serialized, value):
        """A serializer with another signature."""

    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", _serialize_type_structure)

    with pytest.raises(localaws.MotoChanged, match="_serialize_type_structure"):
        localaws.write_plain_attribute_values()
