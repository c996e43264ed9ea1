"""One contract, two implementations: the mirror's S3 inbox bucket (S3 on
moto) and its in-memory fake. (The inbox position in the mirror's state
item is held to its fake in test_mirror_store_contract.py.)"""

from __future__ import annotations

import json

import pytest

from chalicelib.aws import clients as aws
from chalicelib.mirror.inbox import InboxObject, ObjectChanged
from chalicelib.mirror.inbox_bucket import S3InboxBucket
from devtools.fakes.mirror import InMemoryInboxBucket
from tests.conftest import BUCKET

BODY = b'{"a": 1}\n{"b": 2}\n{"c": 3}\n'


class S3Side:
    """The adapter, and a plain client to set up and look at the bucket."""

    def __init__(self) -> None:
        self.client = aws.new_client("s3")
        self.bucket = S3InboxBucket(self.client, BUCKET)

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=body)

    def body(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None


class MemorySide:
    def __init__(self) -> None:
        self.bucket = InMemoryInboxBucket()

    def put(self, key: str, body: bytes) -> None:
        self.bucket.put(key, body)

    def body(self, key: str) -> bytes | None:
        return self.bucket.objects.get(key)


@pytest.fixture(params=["dynamodb", "memory"])
def side(request):
    # "dynamodb" names the AWS side, as in every contract suite: here it is S3.
    if request.param == "memory":
        return MemorySide()
    request.getfixturevalue("moto")
    return S3Side()


def read_all(side, obj: InboxObject, offset: int = 0) -> bytes:
    return b"".join(side.bucket.chunks(obj, offset))


def test_the_inbox_is_listed_in_key_order_without_other_prefixes_or_folder_markers(side):
    for key in ("mirror/inbox/b.jsonl", "mirror/inbox/a.jsonl", "mirror/inbox/", "mirror/done/c.jsonl", "spool/x"):
        side.put(key, BODY)
    listed = side.bucket.list(10)
    assert [(obj.key, obj.name, obj.size) for obj in listed] == [
        ("mirror/inbox/a.jsonl", "a.jsonl", len(BODY)),
        ("mirror/inbox/b.jsonl", "b.jsonl", len(BODY)),
    ]
    assert [obj.key for obj in side.bucket.list(1)] == ["mirror/inbox/a.jsonl"]


def test_an_object_reads_whole_or_from_an_offset(side):
    side.put("mirror/inbox/a.jsonl", BODY)
    (obj,) = side.bucket.list(10)
    assert read_all(side, obj) == BODY
    assert read_all(side, obj, 9) == BODY[9:]
    assert read_all(side, obj, len(BODY)) == b""


def test_a_replaced_object_is_not_read_as_the_version_listed(side):
    side.put("mirror/inbox/a.jsonl", BODY)
    (obj,) = side.bucket.list(10)
    side.put("mirror/inbox/a.jsonl", b'{"other": true}\n')
    with pytest.raises(ObjectChanged):
        read_all(side, obj)
    assert side.bucket.move_to_done(obj) is False
    assert side.body("mirror/done/a.jsonl") is None
    assert side.body("mirror/inbox/a.jsonl") == b'{"other": true}\n'


def test_moving_to_done_keeps_the_name_and_empties_the_inbox(side):
    side.put("mirror/inbox/2026/a.jsonl", BODY)
    (obj,) = side.bucket.list(10)
    assert side.bucket.move_to_done(obj) is True
    assert side.body("mirror/done/2026/a.jsonl") == BODY
    assert side.bucket.list(10) == []


def test_a_rejected_object_moves_beside_its_reason(side):
    side.put("mirror/inbox/bad.bin", b"\x1f\x8b\x08")
    (obj,) = side.bucket.list(10)
    side.bucket.reject(obj, {"reason": "not JSON Lines", "line": 1})
    assert side.body("mirror/rejected/bad.bin") == b"\x1f\x8b\x08"
    assert json.loads(side.body("mirror/rejected/bad.bin.reason.json")) == {"reason": "not JSON Lines", "line": 1}
    assert side.bucket.list(10) == []
