"""devtools/cost_model.py against sizes and units worked out by hand from
AWS's published rules ("DynamoDB item sizes and formats"): every expected
number below is computed in the comment next to it, not by the code."""

from __future__ import annotations

import base64

import pytest

from devtools import cost_model
from devtools.counting_proxy import s3_operation, service_of

TABLE = cost_model.Table(
    "t",
    ("PK", "SK"),
    (
        cost_model.Index("ByAuthor", ("AuthorPK", "AuthorSK"), "ALL"),
        cost_model.Index("Keys", ("KPK", "KSK"), "KEYS_ONLY"),
        cost_model.Index("Texts", ("TPK", "TSK"), "INCLUDE", frozenset({"text"})),
    ),
)


def ledger() -> cost_model.Ledger:
    return cost_model.Ledger({"t": TABLE})


def s(text: str) -> dict:
    return {"S": text}


# An item of 1,541 bytes: PK 2+6, SK 2+4, AuthorPK 8+6, AuthorSK 8+1, text 4+1500.
POST = {"PK": s("POST#1"), "SK": s("POST"), "AuthorPK": s("USER#a"), "AuthorSK": s("1"), "text": s("x" * 1500)}


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("123.450", 4),  # significant digits 12345: 1 + ceil(5 / 2)
        ("0.000500", 2),  # 5: 1 + 1
        ("-1234567", 5),  # 1 + ceil(7 / 2)
        ("1E+3", 2),  # 1000 is 1 trimmed: 1 + 1
        ("0", 2),
    ],
)
def test_a_number_is_one_byte_plus_one_per_two_significant_digits(number, size):
    assert cost_model.number_size(number) == size


def test_item_size_follows_the_published_rules():
    item = {
        "PK": s("USER#ann"),  # 2 + 8 = 10
        "n": {"N": "123.450"},  # 1 + 4 = 5
        "ok": {"BOOL": True},  # 2 + 1 = 3
        "tags": {"SS": ["a", "bc"]},  # 4 + 1 + 2 = 7
        "m": {"M": {"x": s("yz")}},  # 1 + 3 + (1 + 2 + 1) = 8
        "l": {"L": [{"N": "7"}, {"NULL": True}]},  # 1 + 3 + (2 + 1) + (1 + 1) = 9
        "b": {"B": base64.b64encode(b"abc").decode()},  # 1 + 3 raw bytes = 4
        "é": s("ü"),  # 2 + 2 (UTF-8) = 4
    }
    assert cost_model.item_size(item) == 50
    assert cost_model.item_size(POST) == 1541


def test_a_new_item_in_a_transaction_costs_double_plus_its_index_entries():
    # 1,541 bytes is 2 started KB, doubled in a transaction: 4; the ByAuthor
    # index projects ALL: 2 more; the item has no KPK or TPK: no other index.
    request = {"TransactItems": [{"Put": {"TableName": "t", "Item": POST}}]}
    writes = cost_model.write_units(ledger(), "TransactWriteItems", request, succeeded=True)
    assert writes.units == 6
    assert writes.transactional_index_units == 2  # the figure if AWS doubled index writes too: 8


def test_index_entries_are_sized_by_their_projection():
    # Table: 1,541 + KPK 3+1 + KSK 3+1 + TPK 3+1 + TSK 3+1 = 1,557 bytes: 2 units. ByAuthor (ALL): 2.
    # Keys (KEYS_ONLY): PK 8 + SK 6 + KPK 4 + KSK 4 = 22 bytes: 1.
    # Texts (INCLUDE text): 8 + 6 + TPK 4 + TSK 4 + text 1,504 = 1,526 bytes: 2.
    item = {**POST, "KPK": s("k"), "KSK": s("k"), "TPK": s("t"), "TSK": s("t")}
    assert cost_model.write_units(ledger(), "PutItem", {"TableName": "t", "Item": item}, succeeded=True).units == 7


def test_an_update_is_sized_by_the_item_after_it():
    book = ledger()
    counter = {"PK": s("C#1"), "SK": s("C"), "pending": {"N": "9"}}  # 5 + 3 + (7 + 2) = 17 bytes
    cost_model.write_units(book, "PutItem", {"TableName": "t", "Item": counter}, succeeded=True)
    grow = {
        "TableName": "t",
        "Key": {"PK": s("C#1"), "SK": s("C")},
        "UpdateExpression": "ADD pending :one SET body = :big",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":big": s("y" * 1100)},
    }
    # After: 17 (pending 10 is still 2 bytes) + body 4 + 1,100 = 1,121 bytes: 2 started KB.
    assert cost_model.write_units(book, "UpdateItem", grow, succeeded=True).units == 2
    assert book.get("t", grow["Key"])["pending"] == {"N": "10"}


def test_moving_an_index_key_costs_a_delete_and_a_put_in_the_index():
    book = ledger()
    small = {"PK": s("P"), "SK": s("S"), "AuthorPK": s("A"), "AuthorSK": s("1")}
    cost_model.write_units(book, "PutItem", {"TableName": "t", "Item": small}, succeeded=True)
    move = {
        "TableName": "t",
        "Key": {"PK": s("P"), "SK": s("S")},
        "UpdateExpression": "SET #sk = :new",
        "ExpressionAttributeNames": {"#sk": "AuthorSK"},
        "ExpressionAttributeValues": {":new": s("2")},
    }
    # The table: 1; ByAuthor: the old entry deleted (1) and the new one put (1).
    assert cost_model.write_units(book, "UpdateItem", move, succeeded=True).units == 3


def test_a_failed_conditional_write_costs_its_units_but_changes_nothing():
    book = ledger()
    request = {"TransactItems": [{"Put": {"TableName": "t", "Item": POST}}]}
    assert cost_model.write_units(book, "TransactWriteItems", request, succeeded=False).units == 4
    assert book.get("t", {"PK": s("POST#1"), "SK": s("POST")}) is None


def test_reads_round_per_item_or_per_query_to_4_kb_and_halve_when_eventually_consistent():
    book = ledger()
    big = {"PK": s("P"), "SK": s("S"), "blob": {"B": base64.b64encode(b"z" * 5000).decode()}}  # 5,010 bytes
    get = {"TableName": "t", "Key": {"PK": s("P"), "SK": s("S")}}
    assert cost_model.read_units(book, "GetItem", get, {"Item": big}) == 1.0  # 2 x 4 KB, halved
    assert cost_model.read_units(book, "GetItem", {**get, "ConsistentRead": True}, {"Item": big}) == 2.0
    assert cost_model.read_units(book, "GetItem", get, {}) == 0.5  # an absent item: the minimum
    # Three items of 1,541 bytes: 4,623 bytes, 2 units for the Query, halved.
    assert cost_model.read_units(book, "Query", {"TableName": "t"}, {"Items": [POST] * 3, "ScannedCount": 3}) == 1.0
    # BatchGetItem rounds each key: 1 + 1 + 1 (absent), halved.
    batch = {"RequestItems": {"t": {"Keys": [{}, {}, {}]}}}
    assert cost_model.read_units(book, "BatchGetItem", batch, {"Responses": {"t": [POST, POST]}}) == 1.5


def test_update_expressions_apply_if_not_exists_remove_and_nested_paths():
    before = {"PK": s("P"), "SK": s("S"), "gone": s("x"), "m": {"M": {"a": s("1")}}}
    request = {
        "UpdateExpression": "SET n = if_not_exists(n, :zero) + :two, m.b = :v REMOVE gone ADD tags :t",
        "ExpressionAttributeValues": {":zero": {"N": "0"}, ":two": {"N": "2"}, ":v": s("2"), ":t": {"SS": ["a"]}},
    }
    after = cost_model.apply_update(before, request)
    assert after == {
        "PK": s("P"),
        "SK": s("S"),
        "n": {"N": "2"},
        "m": {"M": {"a": s("1"), "b": s("2")}},
        "tags": {"SS": ["a"]},
    }


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "operation"),
    [
        ("PUT", "/bucket/archive/a.json", "", {}, "PutObject"),
        ("PUT", "/bucket/a", "", {"x-amz-copy-source": "/bucket/b"}, "CopyObject"),
        ("GET", "/bucket", "list-type=2&prefix=x", {}, "ListObjectsV2"),
        ("GET", "/bucket/a", "", {}, "GetObject"),
        ("HEAD", "/bucket/a", "", {}, "HeadObject"),
        ("POST", "/bucket", "delete", {}, "DeleteObjects"),
        ("DELETE", "/bucket/a", "", {}, "DeleteObject"),
    ],
)
def test_s3_requests_are_named_by_method_and_path(method, path, query, headers, operation):
    assert s3_operation(method, path, query, headers) == operation


def test_the_service_is_the_signatures_credential_scope():
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261203/us-east-1/kms/aws4_request, Sig=x"}
    assert service_of(signed) == "kms"
    assert service_of({**signed, "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords"}) == "dynamodbstreams"
