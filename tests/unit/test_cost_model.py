"""DynamoDB sizing and the list prices: every expected value is worked out
by hand from the rules in devtools/cost_model.py's docstring."""

from __future__ import annotations

import math

import pytest

from chalicelib.aws import schema
from devtools import cost_model as cm

ALL_INDEX = cm.Index("ByAuthor", ("AuthorPK", "AuthorSK"), "ALL")


def test_a_string_item_is_its_names_and_values_in_bytes():
    # "PK" is 2 bytes, "POST#x" is 6: 8 bytes, one started KB.
    item = {"PK": {"S": "POST#x"}}
    assert cm.item_size(item) == 8
    assert cm.request_write_units("PutItem", {"Item": item}) == 1


def test_strings_count_utf8_bytes_not_characters():
    # "é" is 2 bytes in UTF-8, "🙂" is 4: name 1 + value 6.
    assert cm.item_size({"t": {"S": "é🙂"}}) == 7


@pytest.mark.parametrize(
    ("number", "size"),
    [("1", 2), ("12", 2), ("123", 3), ("1000", 2), ("-12.5", 3), ("0.001", 2)],
)
def test_a_number_is_a_byte_per_two_significant_digits_plus_one(number, size):
    # 1 → 1 digit → 1+1; 123 → 2+1; 1000 → "1" → 2; -12.5 → "125" → 3; 0.001 → "1" → 2.
    assert cm.value_size({"N": number}) == size


def test_binary_bool_null_and_sets():
    assert cm.value_size({"B": b"\x00\x01\x02"}) == 3
    assert cm.value_size({"B": "AAEC"}) == 3  # base64 on the wire
    assert cm.value_size({"BOOL": True}) == 1
    assert cm.value_size({"NULL": True}) == 1
    assert cm.value_size({"SS": ["ab", "cde"]}) == 5
    assert cm.value_size({"NS": ["1", "123"]}) == 2 + 3


def test_maps_and_lists_carry_three_bytes_and_one_per_element():
    # L: 3 + ("ab" 2 + 1) + (BOOL 1 + 1) = 8.
    assert cm.value_size({"L": [{"S": "ab"}, {"BOOL": False}]}) == 8
    # M: 3 + ("k" 1 + "v" 1 + 1) = 6.
    assert cm.value_size({"M": {"k": {"S": "v"}}}) == 6


def item_of_size(size: int) -> dict:
    # Name "PK" (2 bytes) + a string of size - 2 bytes.
    item = {"PK": {"S": "x" * (size - 2)}}
    assert cm.item_size(item) == size
    return item


def test_a_transactional_write_costs_twice_per_started_kb():
    # 1,500 bytes → 2 started KB → 4 units in a transaction, 2 outside.
    item = item_of_size(1500)
    assert cm.request_write_units("TransactWriteItems", {"TransactItems": [{"Put": {"Item": item}}]}) == 4
    assert cm.request_write_units("PutItem", {"Item": item}) == 2


def test_exactly_one_kb_is_one_unit_and_one_byte_more_is_two():
    assert cm.request_write_units("PutItem", {"Item": item_of_size(1024)}) == 1
    assert cm.request_write_units("PutItem", {"Item": item_of_size(1025)}) == 2


def test_an_index_that_holds_the_item_adds_a_write_at_its_projected_size():
    body = {"PK": {"S": "a"}, "SK": {"S": "b"}, "AuthorPK": {"S": "c"}, "AuthorSK": {"S": "d"}}
    body["text"] = {"S": "x" * 2000}
    size = cm.item_size(body)  # 2+1 + 2+1 + 8+1 + 8+1 + 4+2000 = 2028
    assert size == 2028
    # ALL: the table's 2 KB, then the index's 2 KB.
    assert cm.item_write_units(body, (ALL_INDEX,)) == 2 + 2
    # KEYS_ONLY: the index keeps 2+1+2+1+8+1+8+1 = 24 bytes → 1 unit.
    keys_only = cm.Index("ByAuthor", ("AuthorPK", "AuthorSK"), "KEYS_ONLY")
    assert cm.item_write_units(body, (keys_only,)) == 2 + 1
    # INCLUDE text: the whole item again.
    include = cm.Index("ByAuthor", ("AuthorPK", "AuthorSK"), "INCLUDE", ("text",))
    assert cm.item_write_units(body, (include,)) == 2 + 2
    # An item without the index's keys costs the index nothing.
    assert cm.item_write_units({"PK": {"S": "a"}}, (ALL_INDEX,)) == 1


def test_the_schemas_indexes_are_read_with_their_projections():
    indexes = cm.indexes_of(schema.table_definition("t"))
    assert {index.name for index in indexes} == {schema.BY_AUTHOR_INDEX, schema.PUBLIC_INDEX, schema.BACKLOG_INDEX}
    assert {index.projection for index in indexes} == {"ALL"}
    assert {index.keys for index in indexes} >= {schema.index_keys(schema.PUBLIC_INDEX)}


def test_an_update_is_estimated_from_its_key_and_the_values_it_sends():
    params = {
        "Key": {"PK": {"S": "U#1"}},
        "UpdateExpression": "SET #c = if_not_exists(#c, :zero) + :one, seen = :when",
        "ExpressionAttributeNames": {"#c": "count"},
        "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}, ":when": {"S": "now"}},
    }
    image = cm._update_image(params)
    # The key, "count" (the first value assigned to it), "seen", and the
    # value it could not place, under its placeholder's name.
    assert image == {"PK": {"S": "U#1"}, "count": {"N": "0"}, "one": {"N": "1"}, "seen": {"S": "now"}}
    assert cm.request_write_units("UpdateItem", params) == 1


def test_batch_writes_count_each_put_and_delete():
    params = {
        "RequestItems": {
            "t": [
                {"PutRequest": {"Item": item_of_size(3000)}},  # 3 KB
                {"DeleteRequest": {"Key": {"PK": {"S": "a"}}}},  # 1
            ]
        }
    }
    assert cm.request_write_units("BatchWriteItem", params) == 4


def test_reads_are_half_a_unit_per_started_4kb_when_eventually_consistent():
    assert cm.request_read_units("GetItem", {}, {"Item": item_of_size(100)}) == 0.5
    assert cm.request_read_units("GetItem", {"ConsistentRead": True}, {"Item": item_of_size(100)}) == 1
    # Two items of 3,000 bytes in one query: 6,000 bytes → 2 x 4 KB → 1 unit.
    assert cm.request_read_units("Query", {}, {"Items": [item_of_size(3000)] * 2}) == 1
    assert cm.request_read_units("PutItem", {}, {}) == 0


def test_the_cost_of_a_million_uses_the_dated_list_prices():
    usage = cm.Usage(
        api_requests=1, lambda_invocations=1, lambda_memory_mb=1024, lambda_ms=50,
        write_units=4, read_units=1, s3_puts=0, s3_gets=0,
    )  # fmt: skip
    costs = cm.cost_per_million(usage)
    assert costs["api_gateway"] == pytest.approx(3.50)
    # $0.20 + 1e6 x 1 GB x 0.05 s x $0.0000166667 = 0.20 + 0.833335.
    assert costs["lambda"] == pytest.approx(0.20 + 0.833335)
    assert costs["dynamodb"] == pytest.approx(4 * 0.625 + 0.125)
    assert costs["s3"] == 0
    assert costs["total"] == pytest.approx(3.50 + 1.033335 + 2.625)
    # 1 PUT per post → 1e6 PUTs → 1,000 x $0.005 = $5; 1 GET → 1,000 x $0.0004 = $0.40.
    s3 = cm.cost_per_million(cm.Usage(0, 0, 1024, 50, 0, 0, s3_puts=1, s3_gets=1))
    assert s3["s3"] == pytest.approx(5.0 + 0.4)
    assert cm.PRICES_DATED == "2026-12-03"
    assert math.isclose(cm.LAMBDA_PER_GB_SECOND, 0.0000166667)
