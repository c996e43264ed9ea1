"""One contract, two implementations: the shards the stream notes per minute
and the readers' cursors (`stream.active`), on DynamoDB (moto) and in memory."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.stream.active import MIRRORED, POSTS, Cursor
from devtools.fakes.stream import InMemoryActiveShards


@pytest.fixture(params=["dynamodb", "memory"])
def store(request):
    if request.param == "memory":
        return InMemoryActiveShards()
    request.getfixturevalue("moto")
    return wiring.active_shards()


def test_notes_add_up_per_kind_over_minutes_and_splits(store):
    store.note(100, 0, {POSTS: {1, 5}}, expires_at=1)
    store.note(100, 3, {POSTS: {7}, MIRRORED: {2}}, expires_at=1)
    store.note(101, 0, {POSTS: {5, 9}}, expires_at=1)
    store.note(102, 0, {POSTS: {11}}, expires_at=1)
    assert store.buckets([100, 101]) == {POSTS: {1, 5, 7, 9}, MIRRORED: {2}}
    assert store.buckets([103]) == {}


def test_a_note_made_again_changes_nothing(store):
    for _ in range(2):
        store.note(100, 1, {POSTS: {3}}, expires_at=1)
    assert store.buckets([100]) == {POSTS: {3}}


def test_a_reader_without_a_cursor_has_read_nothing_and_cursors_are_per_reader(store):
    assert store.cursor("archive") == Cursor()
    store.save_cursor("archive", Cursor(100, frozenset({4, 8})))
    store.save_cursor("feeds", Cursor(99))
    assert store.cursor("archive") == Cursor(100, frozenset({4, 8}))
    assert store.cursor("feeds") == Cursor(99, frozenset())
    store.save_cursor("archive", Cursor(101))
    assert store.cursor("archive") == Cursor(101, frozenset()), "an empty carry is saved as none"
