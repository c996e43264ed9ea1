"""One contract, two implementations: the posts side of the DynamoDB store
(moto) and of its in-memory fake: create, read, timelines, delete."""

from __future__ import annotations

import pytest

from chalicelib.core import ids
from chalicelib.errors import PostExists, StateChanged
from tests.functional.conftest import new_post

NOW = "2026-11-23T00:00:00.000Z"
_ids = ids.UlidFactory()


@pytest.fixture
def store(stores):
    """The posts store: the contract under test."""
    return stores[0]


def test_a_created_post_reads_back_as_pending(store):
    post = new_post(store)
    assert store.get_post(post.id) == post
    assert post.state == "pending"
    assert store.get_post(_ids.new()) is None


def test_a_second_post_under_a_stored_id_is_refused_with_the_stored_one(store):
    post = new_post(store)
    with pytest.raises(PostExists) as refused:
        store.create_post(post.with_changes(text="another"), "g", 0, 0)
    assert refused.value.stored == post
    assert store.get_post(post.id).text == "t"


def test_several_posts_read_at_once_leave_out_unknown_ids(store):
    first, second = new_post(store), new_post(store, "bob")
    unknown = _ids.new()
    assert store.get_posts([first.id, unknown, second.id, first.id]) == {first.id: first, second.id: second}


def test_an_authors_timeline_is_newest_first_in_pages(store):
    mine = [new_post(store) for _ in range(3)]
    new_post(store, "bob")

    first = store.author_posts("alice", None, 2)
    assert ([p.id for p in first.posts], first.has_more) == ([mine[2].id, mine[1].id], True)
    rest = store.author_posts("alice", first.posts[-1].id, 2)
    assert ([p.id for p in rest.posts], rest.has_more) == ([mine[0].id], False)


def test_the_public_timeline_merges_every_author_newest_first(store):
    written = [new_post(store, author) for author in ("a", "b", "a", "c")]
    page = store.public_posts(None, 3)
    assert ([p.id for p in page.posts], page.has_more) == ([p.id for p in reversed(written)][:3], True)


def test_a_deleted_post_leaves_the_timelines_and_stays_as_a_tombstone(store):
    post, kept = new_post(store), new_post(store)

    store.mark_deleted(post, NOW)

    gone = store.get_post(post.id)
    assert (gone.state, gone.deleted_at, gone.is_deleted) == ("deleted", NOW, True)
    assert [p.id for p in store.author_posts("alice", None, 10).posts] == [kept.id]
    assert [p.id for p in store.public_posts(None, 10).posts] == [kept.id]


def test_a_delete_over_a_state_that_moved_is_refused(stores):
    store, backlog = stores
    post = new_post(store)
    backlog.claim_for_sending(post, "run-1", NOW)  # the replay took it meanwhile

    with pytest.raises(StateChanged):
        store.mark_deleted(post, NOW)  # decided on the pending post we read
    with pytest.raises(StateChanged):
        store.queue_upstream_delete(post, NOW)  # only a replayed post has a copy upstream
    assert store.get_post(post.id).state == "sending"
