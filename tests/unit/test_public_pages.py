"""The public timeline's chunks, pure: keys, buckets, and which ids are
settled while some lane has not finished its bucket."""

from __future__ import annotations

from chalicelib.core import ids
from chalicelib.posts.public_pages import (
    BUCKET_MS,
    Chunk,
    LaneRead,
    Window,
    bucket_of,
    chunk_sk,
    chunks_of,
    decode_id,
    encode_id,
    settled,
)

START_MS = 1_790_000_000_000


def post_id(ms: int, low: int = 0) -> str:
    return ids.ulid_from_value((ms << 80) | low)


def test_buckets_follow_ids_and_keys_sort_as_buckets():
    early, late = post_id(START_MS + BUCKET_MS - 1, (1 << 80) - 1), post_id(START_MS + BUCKET_MS)
    assert bucket_of(late) == bucket_of(early) + 1
    # 12 digits: key order is bucket order even across a power of ten.
    assert chunk_sk(999_999, "z") < chunk_sk(1_000_000, "a")


def test_an_id_survives_its_16_bytes():
    post = post_id(START_MS, 12345)
    assert len(encode_id(post)) == 16 and decode_id(encode_id(post)) == post


def test_a_batch_makes_one_chunk_per_bucket_named_by_its_first_record_there():
    first, second, third = post_id(START_MS, 1), post_id(START_MS + BUCKET_MS), post_id(START_MS, 2)
    chunks = chunks_of([("e1", first, False), ("e2", second, True), ("e3", third, False)])
    assert [(chunk.sk, chunk.own, chunk.mirrored) for chunk in chunks] == [
        (chunk_sk(bucket_of(first), "e1"), {first, third}, set()),
        (chunk_sk(bucket_of(second), "e2"), set(), {second}),
    ]


def lane(*chunks: Chunk, exhausted: bool = False) -> LaneRead:
    return LaneRead(list(chunks), exhausted=exhausted)


def test_ids_wait_while_another_lane_may_still_hold_newer_ones_of_their_bucket():
    bucket = bucket_of(post_id(START_MS))
    a, b, c = (post_id(START_MS + n * BUCKET_MS, 1) for n in range(3))
    newest_first = Window(ids.MIN_ULID, ids.MAX_ULID)
    # Lane 0 went down to bucket+1; lane 1 ended after bucket+2.
    lanes = [
        lane(Chunk(chunk_sk(bucket + 2, "x"), {c}), Chunk(chunk_sk(bucket + 1, "y"), {b})),
        lane(Chunk(chunk_sk(bucket + 2, "z"), {post_id(START_MS + 2 * BUCKET_MS, 2)}), exhausted=True),
    ]

    refs, waiting = settled(newest_first, lanes)

    # bucket+1 may go on in lane 0: only bucket+2 is settled, from both lanes.
    assert [ref.post_id for ref in refs] == [post_id(START_MS + 2 * BUCKET_MS, 2), c]
    assert waiting == [0]
    lanes[0].chunks.append(Chunk(chunk_sk(bucket, "w"), {a}))
    lanes[0].exhausted = True
    assert [ref.post_id for ref in settled(newest_first, lanes)[0]][2:] == [b, a]


def test_a_lane_not_read_yet_holds_everything():
    lanes = [lane(Chunk(chunk_sk(1, "x"), {post_id(START_MS)}), exhausted=True), lane()]
    assert settled(Window(ids.MIN_ULID, ids.MAX_ULID), lanes) == ([], [1])


def test_the_rest_of_a_window_starts_past_its_last_post():
    post = post_id(START_MS, 5)
    assert Window(ids.MIN_ULID, ids.MAX_ULID).after(post).highest == post_id(START_MS, 4)
    assert Window(ids.MIN_ULID, ids.MAX_ULID, oldest_first=True).after(post).lowest == post_id(START_MS, 6)
