"""The DynamoDB table and S3 layout, in one place.

The local stack, the tests and the deploy template all build the table from
this definition, so they cannot drift apart. docs/DESIGN.md explains each key.
"""

from __future__ import annotations

BY_AUTHOR_INDEX = "ByAuthor"
PUBLIC_INDEX = "Public"
BACKLOG_INDEX = "Backlog"
TTL_ATTRIBUTE = "expires_at"

ARCHIVE_PREFIX = "archive/"
SPOOL_PREFIX = "spool/"

_INDEX_KEYS = {
    BY_AUTHOR_INDEX: ("AuthorPK", "AuthorSK"),
    PUBLIC_INDEX: ("PublicPK", "PublicSK"),
    BACKLOG_INDEX: ("BacklogPK", "BacklogSK"),
}


# What a timeline page shows of a post, and all the archive and the feeds
# read from the Public index: the timeline indexes project only these, so
# an index entry of a post is its text and a few short fields (a write unit
# for any post under about 900 bytes of text), never the replay's bookkeeping
# or the Idempotency-Key (up to 255 bytes). The Backlog index projects ALL:
# the replay sends what it reads, and only posts waiting are in it.
TIMELINE_ATTRIBUTES = (
    "id",
    "author",
    "text",
    "created_at",
    "in_reply_to",
    "state",
    "upstream_id",
    "spoiler_text",
    "language",
    "source",
    "failure_reason",
)
_PROJECTIONS = {
    BY_AUTHOR_INDEX: {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(TIMELINE_ATTRIBUTES)},
    PUBLIC_INDEX: {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(TIMELINE_ATTRIBUTES)},
    BACKLOG_INDEX: {"ProjectionType": "ALL"},
}


def index_keys(index: str) -> tuple[str, str]:
    return _INDEX_KEYS[index]


def table_definition(table_name: str) -> dict:
    """Arguments for CreateTable (on-demand; the timeline indexes project
    what a page shows, so a page needs no follow-up read per post)."""
    attributes = {"PK", "SK"} | {name for pair in _INDEX_KEYS.values() for name in pair}
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        # The stream consumer (app.stream_changes) derives counts and markers
        # from each post's images before and after a write.
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": _PROJECTIONS[index],
            }
            for index, (hash_key, range_key) in _INDEX_KEYS.items()
        ],
    }


def ensure_resources(dynamodb, s3, table_name: str, bucket_name: str) -> None:
    """Create the table (with TTL) and the bucket if they are missing.

    Used by the local stack and tests; on AWS the deploy template owns them.
    """
    existing = dynamodb.list_tables()["TableNames"]
    if table_name in existing and "LatestStreamArn" not in dynamodb.describe_table(TableName=table_name)["Table"]:
        # A table made before the stream consumer existed.
        dynamodb.update_table(
            TableName=table_name, StreamSpecification=table_definition(table_name)["StreamSpecification"]
        )
    if table_name not in existing:
        dynamodb.create_table(**table_definition(table_name))
        dynamodb.get_waiter("table_exists").wait(TableName=table_name)
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    buckets = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if bucket_name not in buckets:
        s3.create_bucket(Bucket=bucket_name)
