"""One contract, two implementations: the replay transitions of the
DynamoDB backlog store (on moto) and of the in-memory fake the benchmark
uses, each fed by its posts store."""

from __future__ import annotations

import pytest

from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.errors import StateChanged
from chalicelib.recovery.backlog import BacklogCounts
from tests.functional.conftest import new_post

NOW = "2026-11-23T00:00:00.000Z"
_ids = ids.UlidFactory()


@pytest.fixture
def posts(stores):
    return stores[0]


@pytest.fixture
def store(stores):
    """The backlog store: the contract under test."""
    return stores[1]


def test_the_backlog_window_is_oldest_first_and_leaves_with_replay(posts, store):
    written = [new_post(posts, author) for author in ("a", "b", "a", "c")]
    assert [p.id for p in store.backlog_window(100)] == [p.id for p in written]
    assert store.backlog_size() == 4

    claimed = store.claim_for_sending(written[0], "run-1", NOW)
    assert (claimed.state, claimed.send_attempts) == ("sending", 1)
    assert store.backlog_window(100)[0].id == written[0].id  # a crashed send stays in the backlog
    store.mark_replayed(written[0], "run-1", "up-1", NOW)

    assert [p.id for p in store.backlog_window(100)] == [p.id for p in written[1:]]
    assert store.backlog_size() == 3
    replayed = store.get_post(written[0].id)
    assert (replayed.state, replayed.upstream_id) == ("replayed", "up-1")


def test_only_the_owning_run_may_settle_a_claimed_post(posts, store):
    post = new_post(posts)
    store.claim_for_sending(post, "run-1", NOW)
    store.claim_for_sending(post, "run-2", NOW)  # run-1 died; run-2 holds the lease now
    with pytest.raises(StateChanged):
        store.mark_replayed(post, "run-1", "up-1", NOW)
    store.mark_replayed(post, "run-2", "up-1", NOW)
    with pytest.raises(StateChanged):
        store.claim_for_sending(post, "run-3", NOW)


def test_a_dead_letter_leaves_the_backlog_and_can_be_requeued(posts, store):
    post = new_post(posts)
    store.claim_for_sending(post, "run-1", NOW)
    store.mark_failed(post, "run-1", "HTTP 422: too long", NOW)
    failed = store.get_post(post.id)
    assert (failed.state, failed.failure_reason) == ("failed", "HTTP 422: too long")
    assert store.backlog_window(100) == [] and store.backlog_size() == 0

    store.requeue_dead_letter(failed)

    assert [p.id for p in store.backlog_window(100)] == [post.id]
    assert store.get_post(post.id).state == "pending"


def test_a_deleted_post_cannot_be_claimed(posts, store):
    post = new_post(posts)
    posts.mark_deleted(post, NOW)
    with pytest.raises(StateChanged):
        store.claim_for_sending(post, "run-1", NOW)
    assert store.backlog_window(100) == []


def replayed_post(posts, store, author="alice", upstream_id="up-1") -> Post:
    post = new_post(posts, author)
    store.claim_for_sending(post, "run-1", NOW)
    store.mark_replayed(post, "run-1", upstream_id, NOW)
    return store.get_post(post.id)


def test_a_replayed_post_deleted_here_waits_among_the_upstream_deletes(posts, store):
    post = replayed_post(posts, store)
    later = new_post(posts)

    posts.queue_upstream_delete(post, NOW)

    queued = store.get_post(post.id)
    assert (queued.state, queued.deleted_at, queued.upstream_id) == ("delete_pending", NOW, "up-1")
    assert queued.is_deleted and queued.awaits_upstream_delete
    assert [p.id for p in store.upstream_delete_window(100)] == [post.id]
    assert [p.id for p in store.backlog_window(100)] == [later.id], "the posts to send are apart"
    assert store.backlog_counts() == BacklogCounts(posts=1, upstream_deletes=1)
    with pytest.raises(StateChanged):
        posts.queue_upstream_delete(post, NOW)  # a second delete of the same post


def test_a_delete_confirmed_upstream_leaves_the_queue_and_only_its_owner_confirms_it(posts, store):
    post = replayed_post(posts, store)
    posts.queue_upstream_delete(post, NOW)
    store.claim_for_deleting(post, "run-1", NOW)
    claimed = store.claim_for_deleting(post, "run-2", NOW)  # run-1 died
    assert (claimed.state, claimed.replay_owner) == ("deleting", "run-2")
    assert [p.id for p in store.upstream_delete_window(100)] == [post.id], "in flight, still queued"

    with pytest.raises(StateChanged):
        store.mark_deleted_upstream(post, "run-1", NOW)
    store.mark_deleted_upstream(post, "run-2", "2026-11-23T00:00:05.000Z")

    done = store.get_post(post.id)
    assert (done.state, done.upstream_deleted_at) == ("deleted", "2026-11-23T00:00:05.000Z")
    assert store.upstream_delete_window(100) == []
    assert store.backlog_counts() == BacklogCounts(posts=0, upstream_deletes=0)
    with pytest.raises(StateChanged):
        store.claim_for_deleting(post, "run-3", NOW)


def test_a_delete_the_primary_refuses_is_a_dead_letter_and_can_be_requeued(posts, store):
    post = replayed_post(posts, store)
    posts.queue_upstream_delete(post, NOW)
    store.claim_for_deleting(post, "run-1", NOW)

    store.mark_delete_failed(post, "run-1", "HTTP 403: not yours", NOW)

    failed = store.get_post(post.id)
    assert (failed.state, failed.failure_reason) == ("delete_failed", "HTTP 403: not yours")
    assert failed.is_dead_letter
    assert store.upstream_delete_window(100) == [] and store.backlog_counts().upstream_deletes == 0
    store.requeue_dead_letter(failed)
    assert [(p.id, p.state) for p in store.upstream_delete_window(100)] == [(post.id, "delete_pending")]
    assert store.backlog_counts() == BacklogCounts(posts=0, upstream_deletes=1)


def test_a_post_to_send_cannot_be_claimed_for_deleting_nor_the_other_way(posts, store):
    pending = new_post(posts)
    queued = replayed_post(posts, store)
    posts.queue_upstream_delete(queued, NOW)
    with pytest.raises(StateChanged):
        store.claim_for_deleting(pending, "run-1", NOW)
    with pytest.raises(StateChanged):
        store.claim_for_sending(queued, "run-1", NOW)


def test_a_grouped_claim_claims_every_post_but_those_that_moved(posts, store):
    # Given three pending posts, one of them deleted meanwhile,
    first, gone, last = (new_post(posts, author) for author in ("a", "b", "c"))
    posts.mark_deleted(gone, NOW)

    # when a run claims the three at once, only the deleted one is refused,
    assert store.claim_many_for_sending([first, gone, last], "run-1", NOW) == {gone.id}

    # and the other two are claimed by that run, as one by one.
    assert [(p.state, p.replay_owner, p.send_attempts) for p in map(store.get_post, (first.id, last.id))] == [
        ("sending", "run-1", 1)
    ] * 2


def test_a_grouped_confirm_marks_the_owners_posts_and_reports_the_fenced(posts, store):
    # Given two posts claimed by run-1, and one run-2 took over,
    mine, taken = new_post(posts, "a"), new_post(posts, "b")
    store.claim_many_for_sending([mine, taken], "run-1", NOW)
    store.claim_for_sending(taken, "run-2", NOW)

    # when run-1 confirms both at once (the primary gave both the same id),
    fenced = store.mark_many_replayed([(mine, "up-1"), (taken, "up-1")], "run-1", NOW)

    # then the taken one is fenced and stays run-2's, and run-1's is replayed.
    assert fenced == {taken.id}
    assert (store.get_post(mine.id).state, store.get_post(mine.id).upstream_id) == ("replayed", "up-1")
    assert (store.get_post(taken.id).state, store.get_post(taken.id).replay_owner) == ("sending", "run-2")
    assert [p.id for p in store.backlog_window(100)] == [taken.id]


def test_a_released_claim_is_pending_again_and_only_its_owner_releases_it(posts, store):
    post = new_post(posts)
    store.claim_for_sending(post, "run-1", NOW)
    with pytest.raises(StateChanged):
        store.release_claim(post, "run-2")

    store.release_claim(post, "run-1")

    released = store.get_post(post.id)
    assert (released.state, released.replay_owner, released.send_attempts) == ("pending", None, 0)
    assert store.claim_for_sending(post, "run-2", NOW).send_attempts == 1
