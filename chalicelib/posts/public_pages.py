"""The public timeline as pages the stream writes: the layout of its
chunks and how a reader merges them into a window. Pure.

Why not the Public index: a post's index entry goes to one of WRITE_SHARDS
partitions so that 150,000 posts/s never meet on one, and a merged page
read from the index then costs one query per shard. Instead the stream
consumer writes, for each batch of records, one *chunk* per time bucket it
touched: the ids of the posts of that bucket that the batch made appear.
A batch holds up to 1,000 records, so at load a chunk stands for hundreds
of posts and costs 16 bytes a post.

    PUBLICTL#<lane> / <bucket>#<claim>     own, mirrored: binary sets of ULIDs

- `bucket` is the post id's milliseconds // BUCKET_MS, zero-padded so keys
  sort as numbers: every id of bucket b is below every id of bucket b+1.
- `claim` is the event id of the batch's first record in that bucket: the
  same batch delivered again meets the same chunk. The ids are added to
  binary sets (`ADD`, a union), so any redelivery, in any cut or order,
  leaves every chunk holding at least the ids it should, never a duplicate.
- `lane` spreads the chunks over PUBLIC_LANES partitions (a hash of the
  key), for write rates one partition cannot take (docs/DESIGN.md has the
  arithmetic). A reader queries every lane: PUBLIC_LANES may grow, never
  shrink.

A reader going through a lane's chunks in key order knows a bucket is
complete once a chunk of the next bucket shows up, or the lane ends. So
ids are *settled* up to the first bucket some lane has not finished; only
settled ids are ever handed out, so a page never skips a post another lane
had not shown yet. A deleted post stays in its chunk: the posts' own items
say it is gone when the page reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from chalicelib.core import ids

PREFIX = "PUBLICTL#"
BUCKET_MS = 250
_BUCKET_DIGITS = 12
_ID_BYTES = 16
_RANDOM_BITS = 80  # a ULID's bits below its milliseconds
OWN, MIRRORED = "own", "mirrored"


@dataclass(frozen=True)
class Ref:
    """A post the public timeline shows: its id, and whether it is a
    mirrored post (its item is keyed by the mirror's partition)."""

    post_id: str
    mirrored: bool = False


def bucket_of(post_id: str) -> int:
    return (ids.ulid_value(post_id) >> _RANDOM_BITS) // BUCKET_MS


def bucket_key(bucket: int) -> str:
    return f"{bucket:0{_BUCKET_DIGITS}d}"


def chunk_sk(bucket: int, claim: str) -> str:
    return f"{bucket_key(bucket)}#{claim}"


def lane_of(sk: str, lanes: int) -> int:
    return int(hashlib.sha256(sk.encode()).hexdigest()[:8], 16) % lanes


def lane_pk(lane: int) -> str:
    return f"{PREFIX}{lane}"


def bucket_of_sk(sk: str) -> int:
    return int(sk.split("#", 1)[0])


def encode_id(post_id: str) -> bytes:
    return ids.ulid_value(post_id).to_bytes(_ID_BYTES, "big")


def decode_id(raw: bytes) -> str:
    return ids.ulid_from_value(int.from_bytes(raw, "big"))


@dataclass
class Chunk:
    """The posts one batch made appear in one bucket."""

    sk: str
    own: set[str] = field(default_factory=set)
    mirrored: set[str] = field(default_factory=set)

    def refs(self) -> list[Ref]:
        return [Ref(post_id) for post_id in self.own] + [Ref(post_id, True) for post_id in self.mirrored]


def chunks_of(appeared: Iterable[tuple[str, str, bool]]) -> list[Chunk]:
    """The chunks of one batch: `appeared` holds (event id, post id,
    mirrored) for each post the batch made appear, in the batch's order.
    Depends only on those, so a batch delivered again meets the same keys."""
    by_bucket: dict[int, Chunk] = {}
    for event_id, post_id, mirrored in appeared:
        bucket = bucket_of(post_id)
        chunk = by_bucket.setdefault(bucket, Chunk(chunk_sk(bucket, event_id)))
        (chunk.mirrored if mirrored else chunk.own).add(post_id)
    return list(by_bucket.values())


@dataclass(frozen=True)
class Window:
    """Inclusive id bounds, and the reading direction."""

    lowest: str
    highest: str
    oldest_first: bool = False

    def sk_bounds(self) -> tuple[str, str]:
        # '~' sorts after '#' and every claim: the whole highest bucket.
        return bucket_key(bucket_of(self.lowest)), bucket_key(bucket_of(self.highest)) + "~"

    def holds(self, post_id: str) -> bool:
        return self.lowest <= post_id <= self.highest

    def after(self, post_id: str) -> Window:
        """The rest of the window, past `post_id` in reading order."""
        value = ids.ulid_value(post_id)
        if self.oldest_first:
            return Window(ids.ulid_from_value(value + 1), self.highest, True)
        return Window(self.lowest, ids.ulid_from_value(value - 1), False)

    def before(self, bucket_a: int, bucket_b: int) -> bool:
        """Whether bucket a comes before b in reading order."""
        return bucket_a < bucket_b if self.oldest_first else bucket_a > bucket_b


@dataclass
class LaneRead:
    """What one lane's queries have given so far, in reading order."""

    chunks: list[Chunk] = field(default_factory=list)
    exhausted: bool = False
    next_key: dict | None = None

    def last_bucket(self) -> int | None:
        return bucket_of_sk(self.chunks[-1].sk) if self.chunks else None


def settled(window: Window, lanes: list[LaneRead]) -> tuple[list[Ref], list[int]]:
    """The ids every lane has finished, in reading order, and the lanes
    holding the rest back (to read on; none when every lane has ended and
    every id is settled). A lane that has not ended has finished the
    buckets before its last one: the first of those last buckets, in
    reading order, is the frontier, and the lanes whose last bucket it is
    hold it. A lane not read yet holds everything."""
    open_lanes = [(index, lane.last_bucket()) for index, lane in enumerate(lanes) if not lane.exhausted]
    unread = [index for index, last in open_lanes if last is None]
    if unread:
        return [], unread
    frontier = None
    for _, last in open_lanes:
        if frontier is None or window.before(last, frontier):
            frontier = last
    refs = {
        ref.post_id: ref
        for lane in lanes
        for chunk in lane.chunks
        if frontier is None or window.before(bucket_of_sk(chunk.sk), frontier)
        for ref in chunk.refs()
        if window.holds(ref.post_id)
    }
    ordered = sorted(refs.values(), key=lambda ref: ref.post_id, reverse=not window.oldest_first)
    return ordered, [index for index, last in open_lanes if last == frontier]
