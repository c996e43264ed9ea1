"""dynamo.batch_get: keys DynamoDB leaves unprocessed are asked again, with
backoff, and a read that never completes is a 503, not a hot loop. The
client is a real botocore client answered by botocore's own Stubber."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.aws import dynamo
from chalicelib.errors import StoreUnavailable

TABLE = "lifeboat"


def key(n: int) -> dict:
    return dynamo.key(f"POST#{n}", "POST")


def item(n: int) -> dict:
    return {**key(n), "text": {"S": f"post {n}"}}


@pytest.fixture
def client():
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(dynamo.time, "sleep", slept.append)
    return slept


def test_unprocessed_keys_are_asked_again_until_every_item_is_read(client, sleeps):
    stubber = Stubber(client)
    first = {"Responses": {TABLE: [item(1)]}, "UnprocessedKeys": {TABLE: {"Keys": [key(2)]}}}
    stubber.add_response(
        "batch_get_item", first, {"RequestItems": {TABLE: {"Keys": [key(1), key(2)], "ConsistentRead": True}}}
    )
    stubber.add_response(
        "batch_get_item", {"Responses": {TABLE: [item(2)]}}, {"RequestItems": {TABLE: {"Keys": [key(2)]}}}
    )
    with stubber:
        found = dynamo.batch_get(client, TABLE, [key(1), key(2)], "read", consistent=True)
    stubber.assert_no_pending_responses()
    assert sorted(entry["PK"]["S"] for entry in found) == ["POST#1", "POST#2"]
    assert len(sleeps) == 1  # one backoff before the second round


def test_more_than_a_hundred_keys_take_one_request_per_hundred(client, sleeps):
    stubber = Stubber(client)
    keys = [key(n) for n in range(150)]
    for chunk in (keys[:100], keys[100:]):
        expected = {"RequestItems": {TABLE: {"Keys": chunk, "ConsistentRead": False}}}
        stubber.add_response("batch_get_item", {"Responses": {TABLE: [item(0)]}}, expected)
    with stubber:
        found = dynamo.batch_get(client, TABLE, keys, "read")
    stubber.assert_no_pending_responses()
    assert len(found) == 2
    assert sleeps == []


def test_keys_left_unprocessed_round_after_round_are_a_store_outage(client, sleeps):
    stubber = Stubber(client)
    left_out = {"Responses": {}, "UnprocessedKeys": {TABLE: {"Keys": [key(1)]}}}
    for _ in range(dynamo.BATCH_GET_ROUNDS):
        stubber.add_response("batch_get_item", left_out)
    with stubber, pytest.raises(StoreUnavailable):
        dynamo.batch_get(client, TABLE, [key(1)], "read")
    stubber.assert_no_pending_responses()
    assert len(sleeps) == dynamo.BATCH_GET_ROUNDS
    assert all(0 <= slept <= 0.05 * 2**round_ for round_, slept in enumerate(sleeps))  # bounded, growing backoff


def put(n: int) -> dict:
    return {"PutRequest": {"Item": item(n)}}


def test_unprocessed_writes_are_sent_again_until_every_item_is_written(client, sleeps):
    stubber = Stubber(client)
    stubber.add_response(
        "batch_write_item", {"UnprocessedItems": {TABLE: [put(2)]}}, {"RequestItems": {TABLE: [put(1), put(2)]}}
    )
    stubber.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {TABLE: [put(2)]}})
    with stubber:
        sent = dynamo.batch_write(client, TABLE, [put(1), put(2)], "mirror")
    stubber.assert_no_pending_responses()
    assert (sent, len(sleeps)) == (2, 1)


def test_writes_dynamodb_never_takes_are_a_503_after_the_last_round(client, sleeps):
    stubber = Stubber(client)
    for _ in range(dynamo.BATCH_GET_ROUNDS):
        stubber.add_response("batch_write_item", {"UnprocessedItems": {TABLE: [put(1)]}})
    with stubber, pytest.raises(StoreUnavailable, match="kept items unprocessed"):
        dynamo.batch_write(client, TABLE, [put(1)], "mirror")
    stubber.assert_no_pending_responses()
