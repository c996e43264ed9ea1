"""One contract, two implementations: the archive checkpoints on DynamoDB
(moto) and their in-memory fake."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from devtools.fakes.posts import InMemoryArchiveCheckpoints


@pytest.fixture(params=["dynamodb", "memory"])
def checkpoints(request):
    if request.param == "memory":
        return InMemoryArchiveCheckpoints()
    request.getfixturevalue("moto")
    return wiring.archive_checkpoints()


def test_a_shard_never_archived_starts_before_every_id(checkpoints):
    assert checkpoints.get(0) == ""


def test_a_checkpoint_moves_only_from_where_the_mover_read_it(checkpoints):
    assert checkpoints.advance(0, "", "01ARZ3NDEKTSV4RRFFQ69G5FA1")
    # An overlapping run read "" too: it archived the same posts, and loses.
    assert not checkpoints.advance(0, "", "01ARZ3NDEKTSV4RRFFQ69G5FA2")
    assert checkpoints.advance(0, "01ARZ3NDEKTSV4RRFFQ69G5FA1", "01ARZ3NDEKTSV4RRFFQ69G5FA3")
    assert checkpoints.get(0) == "01ARZ3NDEKTSV4RRFFQ69G5FA3"
    assert checkpoints.get(1) == "", "each shard has its own"
