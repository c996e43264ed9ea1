"""Where the stream consumer keeps what it derives. Pure.

- `STATUS#<k> / COUNTS`, k < STATUS_SHARDS: the counts `/status` shows
  (pending, deletes, dead_letters) and the public feed marker's share
  (feed_version, feed_changed_at, last_post_id, last_deleted_id). Each
  applied run of records adds to one of them, chosen by the post its first
  record names, so the sum over the shards is the whole; they are read
  together with one BatchGetItem, whatever WRITE_SHARDS is.
- `STATUS / OLDEST`: `oldest`, the id of the oldest post waiting to be sent
  (as far as the stream has seen), and `stale` once that post left the
  backlog, until the maintenance job looks the next one up.
- `STREAM#<event id> / CLAIM`: a run of records applied (its first record's
  event id, how many records), kept two days by TTL: a run delivered again
  within the stream's 24-hour retention finds it and is not counted twice.
"""

from __future__ import annotations

import hashlib

STATUS_SHARDS = 10
CLAIM_DAYS = 2
_COUNTS_SK = "COUNTS"


def _key(pk: str, sk: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def status_shard_key(shard: int) -> dict:
    return _key(f"STATUS#{shard}", _COUNTS_SK)


def status_shard_keys() -> list[dict]:
    return [status_shard_key(shard) for shard in range(STATUS_SHARDS)]


def oldest_key() -> dict:
    return _key("STATUS", "OLDEST")


def claim_key(claim_id: str) -> dict:
    return _key(f"STREAM#{claim_id}", "CLAIM")


def status_shard_of(post_id: str) -> int:
    return int(hashlib.sha256(post_id.encode()).hexdigest()[:8], 16) % STATUS_SHARDS


def is_status_shard(pk: str) -> bool:
    return pk.startswith("STATUS#")
