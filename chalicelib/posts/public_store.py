"""The DynamoDB adapter of the public timeline's chunks (`public_pages`):
the stream consumer adds to them, the timelines read a window of them.

A window costs one Query per lane (PUBLIC_LANES, 1 by default), in
parallel, and more only when a lane's first answer ends inside the bucket
that decides the page (docs/DESIGN.md, "Public timeline").
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.posts.public_pages import (
    Chunk,
    LaneRead,
    Ref,
    Window,
    decode_id,
    encode_id,
    lane_of,
    lane_pk,
    settled,
)

# Chunks one Query asks for: a page of 40 posts needs a few at load (each
# holds up to a batch's posts) and at most 41 when every chunk holds one.
CHUNKS_PER_QUERY = 64
# Queries of one lane for one window at most: past them the window answers
# with what is settled and says more follow.
_READ_ROUNDS = 4


class PublicPages:
    def __init__(self, client, table_name: str, lanes: int) -> None:
        self._client = client
        self._table = table_name
        self._lanes = lanes

    def add(self, chunks: list[Chunk]) -> None:
        """Add each chunk's ids to its item: one UpdateItem a chunk (a
        union, so repeating it changes nothing)."""
        for chunk in chunks:
            self._add(chunk)

    def _add(self, chunk: Chunk) -> None:
        sets = {name: ids for name, ids in (("own", chunk.own), ("mirrored", chunk.mirrored)) if ids}
        if not sets:
            return
        with unavailable_as_domain_error("add to the public timeline"):
            self._client.update_item(
                TableName=self._table,
                Key={"PK": {"S": lane_pk(lane_of(chunk.sk, self._lanes))}, "SK": {"S": chunk.sk}},
                UpdateExpression="ADD " + ", ".join(f"{name} :{name}" for name in sets),
                ExpressionAttributeValues={
                    f":{name}": {"BS": [encode_id(post_id) for post_id in sorted(ids)]} for name, ids in sets.items()
                },
            )

    def refs(self, window: Window, want: int) -> tuple[list[Ref], bool]:
        """The settled posts of `window` in reading order (at least `want`
        of them if the window holds them, maybe more), and whether the
        window may hold posts beyond them."""
        lanes = [LaneRead() for _ in range(self._lanes)]
        self._read_on(window, lanes, range(self._lanes))
        for _ in range(_READ_ROUNDS - 1):
            refs, waiting = settled(window, lanes)
            if len(refs) >= want or not waiting:
                return refs, bool(waiting)
            self._read_on(window, lanes, waiting)
        refs, waiting = settled(window, lanes)
        return refs, bool(waiting)

    def _read_on(self, window: Window, lanes: list[LaneRead], which) -> None:
        which = list(which)
        if len(which) == 1:
            self._query(window, which[0], lanes[which[0]])
            return
        with ThreadPoolExecutor(max_workers=min(len(which), 16)) as pool:
            list(pool.map(lambda index: self._query(window, index, lanes[index]), which))

    def _query(self, window: Window, lane: int, read: LaneRead) -> None:
        low, high = window.sk_bounds()
        request = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": lane_pk(lane)}, ":low": {"S": low}, ":high": {"S": high}},
            "ScanIndexForward": window.oldest_first,
            "Limit": CHUNKS_PER_QUERY,
        }
        if read.next_key:
            request["ExclusiveStartKey"] = read.next_key
        with unavailable_as_domain_error("query the public timeline"):
            response = self._client.query(**request)
        read.chunks += [_chunk(item) for item in response["Items"]]
        read.next_key = response.get("LastEvaluatedKey")
        read.exhausted = read.next_key is None


def _chunk(item: dict) -> Chunk:
    return Chunk(
        item["SK"]["S"],
        own={decode_id(raw) for raw in item.get("own", {}).get("BS", [])},
        mirrored={decode_id(raw) for raw in item.get("mirrored", {}).get("BS", [])},
    )
