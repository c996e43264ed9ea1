"""The rate limit's post windows: what the stream counts per author and
minute (string sets of post tags, the same however often and in whatever
order records come), and how one container admits a post against that
count and its own accepted posts."""

from __future__ import annotations

import random

import pytest

from chalicelib.accounts.rate_limits import PostWindows, posts_limit
from chalicelib.accounts.windows import post_tag, post_window
from chalicelib.core import ids
from chalicelib.errors import RateLimited, StoreUnavailable
from chalicelib.stream.consumer import StreamConsumer
from devtools.fakes.stream import InMemoryStreamStore
from tests.unit.test_stream_consumer import EVERY_POST, consume, image, post


def every_record() -> list[dict]:
    return [r for records in EVERY_POST for r in records]


def test_every_post_that_appears_is_counted_once_in_its_authors_minute():
    store = InMemoryStreamStore()
    consume(store, every_record())

    minute = post_window(post(1).id)
    assert store.post_windows == {
        ("alice", minute): {post_tag(post(n).id) for n in (1, 3, 5)},
        ("bob", minute): {post_tag(post(n).id) for n in (2, 4)},
    }, "a delete or a replay transition counts nothing more"


@pytest.mark.parametrize("seed", range(3))
def test_records_delivered_again_and_out_of_order_count_the_same(seed):
    once = InMemoryStreamStore()
    consume(once, every_record())
    records = every_record()
    rng = random.Random(seed)

    again = InMemoryStreamStore()
    consume(again, records, rng.sample(records, len(records)), records[:5])

    assert again.post_windows == once.post_windows


def test_mirrored_posts_and_a_stack_without_the_limit_count_nothing():
    mirrored = post(7, author="carol")
    record = {
        "eventID": "mirror-1",
        "dynamodb": {
            "Keys": {"PK": {"S": "MIRROR#0"}, "SK": {"S": mirrored.id}},
            "NewImage": {**image(mirrored), "PK": {"S": "MIRROR#0"}, "SK": {"S": mirrored.id}},
        },
    }
    store = InMemoryStreamStore()
    consume(store, [record])
    unlimited = InMemoryStreamStore()
    StreamConsumer(unlimited, counts_posts=False).handle(every_record())

    assert store.post_windows == unlimited.post_windows == {}


MINUTE = 29_000_000 * 60


def charge(seconds: float = 20.0, user: str = "alice"):
    return posts_limit(3).charge_at(user, MINUTE + seconds)


def post_id(seconds: float = 20.0) -> str:
    return ids.UlidFactory(clock=lambda: MINUTE + seconds).new()


def test_a_container_admits_up_to_the_limit_counting_its_own_posts_and_the_streams():
    windows = PostWindows()
    counted = {post_tag(post_id())}  # another container's post, on the stream
    for _ in range(2):
        windows.admit(charge(), post_id(), lambda _charge: counted)

    with pytest.raises(RateLimited) as refused:
        windows.admit(charge(), post_id(), lambda _charge: counted)

    assert (refused.value.code, refused.value.retry_after) == ("too_many_posts", 40)


def test_its_own_posts_on_the_stream_are_not_counted_twice():
    windows = PostWindows()
    mine = [post_id() for _ in range(2)]
    for one in mine:
        windows.admit(charge(), one, lambda _charge: set())

    # The stream caught up with both: still one post of room.
    windows.admit(charge(), post_id(), lambda _charge: {post_tag(one) for one in mine})


def test_a_post_already_in_its_window_is_admitted_again_and_other_windows_are_their_own():
    windows = PostWindows()
    ids_made = [post_id() for _ in range(3)]
    for one in ids_made:
        windows.admit(charge(), one, lambda _charge: set())

    windows.admit(charge(), ids_made[0], lambda _charge: set())  # its own retry
    windows.admit(charge(user="bob"), post_id(), lambda _charge: set())
    windows.admit(charge(seconds=61), post_id(seconds=61), lambda _charge: set())


def test_no_limit_reads_nothing():
    def never(_charge):
        raise AssertionError("read")

    PostWindows().admit(posts_limit(0).charge_at("alice", MINUTE), post_id(), never)


def test_a_window_that_cannot_be_read_counts_the_containers_own_posts():
    def unreadable(_charge):
        raise StoreUnavailable("read the post window")

    windows = PostWindows()
    for _ in range(3):
        windows.admit(charge(), post_id(), unreadable)
    with pytest.raises(RateLimited):
        windows.admit(charge(), post_id(), unreadable)
