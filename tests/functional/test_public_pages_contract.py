"""One contract, two implementations: the public timeline's chunks on
DynamoDB (moto, over three lanes and with queries cut short so a window
takes several rounds) and their in-memory fake. A window hands out every
post added to it, once, in order, whatever the chunks and lanes and
however often a batch was added."""

from __future__ import annotations

import random

import pytest

from chalicelib import wiring
from chalicelib.core import ids
from chalicelib.posts import public_store
from chalicelib.posts.public_pages import BUCKET_MS, Chunk, Window, chunks_of
from chalicelib.posts.public_store import PublicPages
from devtools.fakes.posts import InMemoryPublicPages
from tests.conftest import TABLE

START_MS = 1_790_000_000_000


@pytest.fixture(params=["dynamodb", "memory"])
def pages(request, monkeypatch):
    if request.param == "memory":
        return InMemoryPublicPages()
    request.getfixturevalue("moto")
    monkeypatch.setattr(public_store, "CHUNKS_PER_QUERY", 2)
    return PublicPages(wiring.dynamodb(), TABLE, lanes=3)


def post_id(ms: int, low: int = 0) -> str:
    return ids.ulid_from_value((ms << 80) | low)


def every_ref(pages, window: Window, want: int = 3) -> list[str]:
    """Page through the window, as a reader would, to its end."""
    seen: list[str] = []
    for _ in range(100):
        refs, more = pages.refs(window, want)
        page = refs[:want]
        seen += [ref.post_id for ref in page]
        if not page:
            assert not more, "a window that says more follow hands some out"
            return seen
        if not more and len(refs) <= want:
            return seen
        window = window.after(page[-1].post_id)
    raise AssertionError("the window never ended")


def batches_of(posts: list[str], size: int) -> list[list[Chunk]]:
    """Posts added in batches, as the stream consumer adds them."""
    return [
        chunks_of((f"event-{start + n}", post, False) for n, post in enumerate(posts[start : start + size]))
        for start in range(0, len(posts), size)
    ]


def test_a_window_hands_out_every_post_once_newest_first(pages):
    rng = random.Random(7)
    # Posts over many buckets, several in some, added in batches out of order.
    posts = sorted({post_id(START_MS + rng.randrange(40 * BUCKET_MS), rng.randrange(1 << 80)) for _ in range(60)})
    batches = batches_of(rng.sample(posts, len(posts)), 7)
    for chunks in batches:
        pages.add(chunks)

    assert every_ref(pages, Window(ids.MIN_ULID, ids.MAX_ULID)) == list(reversed(posts))
    assert every_ref(pages, Window(ids.MIN_ULID, ids.MAX_ULID, oldest_first=True), want=4) == posts


def test_a_batch_added_again_or_cut_otherwise_changes_nothing(pages):
    posts = [post_id(START_MS + n * 100, n) for n in range(30)]
    for chunks in batches_of(posts, 10):
        pages.add(chunks)
    # Redelivered: the same batches, then longer and shorter cuts of them.
    for chunks in batches_of(posts, 10) + batches_of(posts, 4) + batches_of(posts[:12], 12):
        pages.add(chunks)

    assert every_ref(pages, Window(ids.MIN_ULID, ids.MAX_ULID), want=5) == list(reversed(posts))


def test_a_window_holds_only_its_ids_even_inside_one_bucket(pages):
    posts = [post_id(START_MS, low) for low in range(1, 6)] + [post_id(START_MS + 5 * BUCKET_MS)]
    pages.add(chunks_of((f"e{n}", post, False) for n, post in enumerate(posts)))

    window = Window(posts[1], posts[3])
    assert every_ref(pages, window) == [posts[3], posts[2], posts[1]]
    refs, _ = pages.refs(Window(posts[4], ids.MAX_ULID), 10)
    assert [ref.post_id for ref in refs] == [posts[5], posts[4]]


def test_mirrored_posts_are_told_apart(pages):
    own, mirrored = post_id(START_MS, 1), post_id(START_MS, 2)
    pages.add(chunks_of([("e1", own, False), ("e2", mirrored, True)]))

    refs, _ = pages.refs(Window(ids.MIN_ULID, ids.MAX_ULID), 5)
    assert [(ref.post_id, ref.mirrored) for ref in refs] == [(mirrored, True), (own, False)]


def test_an_empty_window_has_nothing_and_no_more(pages):
    pages.add(chunks_of([("e1", post_id(START_MS), False)]))
    refs, more = pages.refs(Window(post_id(START_MS + BUCKET_MS), ids.MAX_ULID), 5)
    assert (refs, more) == ([], False)
