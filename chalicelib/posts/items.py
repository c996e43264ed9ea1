"""How posts are laid out in the table: keys, index partitions, and the
translation between DynamoDB items and `Post` (the counts derived from
posts are the stream's: `stream.layout`).

Both adapters over post items (`posts.store.PostStore`, the write path and
timelines, and `recovery.backlog.BacklogStore`, the replay's state machine)
share this layout, so it is written down once, here, with the two reads
they both make (one post by id, one page of an index partition).
"""

from __future__ import annotations

import hashlib

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.aws.schema import BACKLOG_INDEX, BY_AUTHOR_INDEX, PUBLIC_INDEX, index_keys
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.mirror.layout import mirror_partition

POST_SK = "POST"
# Dead letters keep their Backlog index keys under this one partition: they
# are rare, and listing them is an admin read.
DEAD_LETTER_PARTITION = "DEADLETTER"
# Replayed posts deleted here, whose copy on the primary is still to be
# deleted, keep their Backlog index keys under these partitions (one per
# write shard), apart from the posts to send: the posts' window must stay a
# prefix by id, and their oldest-pending age must not count a delete of an
# old post queued just now.
UPSTREAM_DELETES_PARTITION = "DELETES"
# Above every ULID in string order: "no cursor" means "before the end of time".
AFTER_ALL_IDS = "~"
# Below every ULID in string order (DynamoDB refuses empty key values).
BEFORE_ALL_IDS = "0"
INDEX_ATTRIBUTES = [name for index in (BY_AUTHOR_INDEX, PUBLIC_INDEX, BACKLOG_INDEX) for name in index_keys(index)]
TIMELINE_ATTRIBUTES = [name for index in (BY_AUTHOR_INDEX, PUBLIC_INDEX) for name in index_keys(index)]
_KEY_ATTRIBUTES = {"PK", "SK", *INDEX_ATTRIBUTES}


def shard_of(post_id: str, shards: int) -> int:
    """Stable shard for a post: derived from its id, so any later update
    (delete, replay) finds the same index partitions without a lookup. Only
    from the id's top 64 bits, its Mastodon id (`mastodon.ids`): a status
    asked for by that id is in one known shard. Like WRITE_SHARDS, this is
    fixed for a table's life."""
    return key_shard(str(ids.ulid_value(post_id) >> 64), shards)


def key_shard(key: str, shards: int) -> int:
    """A stable shard for any other key (a username)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % shards


def idempotency_pk(author: str, key: str) -> str:
    # Keys are hashed: they are client-chosen and may be up to 255 bytes.
    return f"IDEM#{author}#{hashlib.sha256(key.encode()).hexdigest()}"


def post_key(post_id: str) -> dict:
    return dynamo.key(f"POST#{post_id}", POST_SK)


def author_partition(author: str) -> str:
    return f"USER#{author}"


def public_partition(shard: int) -> str:
    return f"PUBLIC#{shard}"


def backlog_partition(shard: int) -> str:
    return f"BACKLOG#{shard}"


def upstream_deletes_partition(shard: int) -> str:
    return f"{UPSTREAM_DELETES_PARTITION}#{shard}"


def new_post_item(post: Post, shards: int) -> dict:
    """A new post with the keys of every index it starts in: its author's
    timeline, its public shard and its backlog shard."""
    shard = shard_of(post.id, shards)
    return {
        **post.to_record(),
        "PK": f"POST#{post.id}",
        "SK": POST_SK,
        "AuthorPK": author_partition(post.author),
        "AuthorSK": post.id,
        "PublicPK": public_partition(shard),
        "PublicSK": post.id,
        "BacklogPK": backlog_partition(shard),
        "BacklogSK": post.id,
    }


def string_or_null(value: str | None) -> dict:
    return {"S": value} if value else {"NULL": True}


def post_from_item(item: dict) -> Post:
    return post_from_values(dynamo.from_item(item))


def post_from_values(values: dict) -> Post:
    return Post.from_record({name: value for name, value in values.items() if name not in _KEY_ATTRIBUTES})


# Mirrored posts of the primary live in the base table under their public
# shard (chalicelib/mirror/layout.py): a "partition" of the base table is
# queried like an index partition, on PK and SK.
BASE_TABLE = ""


def mirrored_post_key(post_id: str, shards: int) -> dict:
    return dynamo.key(mirror_partition(shard_of(post_id, shards)), post_id)


def key_names(index: str) -> tuple[str, str]:
    return ("PK", "SK") if index == BASE_TABLE else index_keys(index)


def index_argument(index: str) -> dict:
    return {} if index == BASE_TABLE else {"IndexName": index}


def read_post(client, table: str, post_id: str, shards: int | None = None) -> Post | None:
    """One post by id, strongly consistent; None if it is not stored. With
    `shards`, a post not written here may be a mirrored one (a second read,
    only on a miss)."""
    with unavailable_as_domain_error("get post"):
        response = client.get_item(TableName=table, Key=post_key(post_id), ConsistentRead=True)
        if "Item" not in response and shards is not None:
            response = client.get_item(TableName=table, Key=mirrored_post_key(post_id, shards), ConsistentRead=True)
    return post_from_item(response["Item"]) if "Item" in response else None


def query_posts(
    client,
    table: str,
    index: str,
    partition: str,
    *,
    limit: int,
    before_id: str | None = None,
    after_id: str | None = None,
) -> list[Post]:
    """One page of an index partition; newest first unless `after_id`
    is given (then oldest first, between the two ids inclusive)."""
    hash_key, range_key = key_names(index)
    values = {":pk": {"S": partition}, ":before": {"S": before_id or AFTER_ALL_IDS}}
    condition = "#pk = :pk AND #sk < :before"
    if after_id is not None:
        values[":after"] = {"S": after_id}
        condition = "#pk = :pk AND #sk BETWEEN :after AND :before"
    with unavailable_as_domain_error(f"query {index}"):
        response = client.query(
            TableName=table,
            **index_argument(index),
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#pk": hash_key, "#sk": range_key},
            ExpressionAttributeValues=values,
            ScanIndexForward=after_id is not None,
            Limit=limit,
        )
    return [post_from_item(item) for item in response["Items"]]
