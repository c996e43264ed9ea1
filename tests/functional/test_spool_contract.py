"""One contract, two implementations: the S3 spool (moto) and its
in-memory fake."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.core.models import Post
from chalicelib.errors import ValidationFailed
from chalicelib.posts.archive import Spool
from devtools.fakes.posts import InMemorySpool
from tests.conftest import BUCKET

T = "2026-11-23T00:00:00.000Z"


@pytest.fixture(params=["dynamodb", "memory"])
def spool(request):
    # "dynamodb" names the AWS side, as in every contract suite: here it is S3.
    if request.param == "memory":
        return InMemorySpool()
    request.getfixturevalue("moto")
    return Spool(wiring.s3(), BUCKET)


def post(post_id: str, key: str | None = None, author: str = "alice") -> Post:
    return Post(id=post_id, author=author, text=f"text of {post_id}", created_at=T, idempotency_key=key)


def test_spooled_posts_are_listed_read_back_and_deleted(spool):
    first, second = post("01ARZ3NDEKTSV4RRFFQ69G5FA1"), post("01ARZ3NDEKTSV4RRFFQ69G5FA2", author="bob")
    assert spool.put(first, "f1") == first
    assert spool.put(second, "f2") == second

    keys = spool.keys(10)
    assert {spool.read(key)[0].id: spool.read(key) for key in keys} == {
        first.id: (first, "f1", None),
        second.id: (second, "f2", None),
    }
    assert len(spool.keys(1)) == 1

    spool.delete(keys[0])
    assert spool.keys(10) == keys[1:]


def test_a_retry_with_the_same_key_gets_the_first_post_back(spool):
    first = post("01ARZ3NDEKTSV4RRFFQ69G5FA1", key="k-1")
    assert spool.put(first, "f") == first

    assert spool.put(post("01ARZ3NDEKTSV4RRFFQ69G5FA2", key="k-1"), "f") == first
    assert len(spool.keys(10)) == 1


def test_a_key_reused_for_another_post_is_refused(spool):
    spool.put(post("01ARZ3NDEKTSV4RRFFQ69G5FA1", key="k-1"), "f")

    with pytest.raises(ValidationFailed):
        spool.put(post("01ARZ3NDEKTSV4RRFFQ69G5FA2", key="k-1"), "another body")
