"""The posts and backlog stores, on DynamoDB (moto) and in memory, for the
contract suites that hold both to one behaviour."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.core import ids
from chalicelib.core.models import Post
from devtools.fakes.posts import in_memory_stores

_ids = ids.UlidFactory()


@pytest.fixture(params=["dynamodb", "memory"])
def stores(request):
    """(posts store, backlog store) sharing one table."""
    if request.param == "memory":
        return in_memory_stores()
    request.getfixturevalue("moto")
    return wiring.post_store(), wiring.backlog_store()


def new_post(posts, author="alice") -> Post:
    """A pending post, written through the posts store."""
    post_id = _ids.new()
    post = Post(id=post_id, author=author, text="t", created_at=ids.iso_from_millis(ids.ulid_millis(post_id)))
    posts.create_post(post, "fingerprint", 0, 0)
    return post
