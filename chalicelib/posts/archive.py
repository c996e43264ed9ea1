"""S3: the post archive (JSON Lines by hour) and the spool (posts accepted
while DynamoDB refused writes)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import NamedTuple

from botocore.exceptions import ClientError

from chalicelib.accounts.kept_tokens import SealedToken
from chalicelib.aws.clients import error_code, unavailable_as_domain_error
from chalicelib.aws.schema import ARCHIVE_PREFIX, SPOOL_PREFIX
from chalicelib.core.models import Post
from chalicelib.errors import ValidationFailed

_ARCHIVED_FIELDS = ("id", "author", "text", "created_at", "in_reply_to")


def archive_record(post: Post) -> dict:
    """What the archive keeps of a post: what its author wrote, not the
    replay bookkeeping that changes later."""
    public = post.to_public()
    return {name: public[name] for name in _ARCHIVED_FIELDS}


def hour_prefix(created_at: str) -> str:
    # created_at is "YYYY-MM-DDTHH:...Z": the partition is its hour.
    return f"{ARCHIVE_PREFIX}{created_at[0:4]}/{created_at[5:7]}/{created_at[8:10]}/{created_at[11:13]}/"


class Archive:
    """Append-only JSON Lines objects under archive/YYYY/MM/DD/HH/.

    The caller names each batch after what fixes its content (a shard's
    checkpoint, a spooled post's id), so writing the same batch again (a
    retried job) overwrites the object instead of archiving posts twice.
    """

    def __init__(self, client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def write(self, posts: Iterable[Post], batch_name: str) -> list[str]:
        keys = []
        ordered = sorted(posts, key=lambda post: post.id)
        for prefix, group in groupby(ordered, key=lambda post: hour_prefix(post.created_at)):
            group = list(group)
            key = f"{prefix}{batch_name}.jsonl"
            body = "".join(json.dumps(archive_record(post), ensure_ascii=False) + "\n" for post in group)
            with unavailable_as_domain_error("write archive"):
                self._client.put_object(
                    Bucket=self._bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/x-ndjson"
                )
            keys.append(key)
        return keys

    def read(self, since: datetime, until: datetime) -> Iterator[dict]:
        """Archived posts with since <= created_at < until, in id order."""
        records = []
        for prefix in _hour_prefixes(since, until):
            for key in self._keys(prefix):
                body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read().decode("utf-8")
                records.extend(json.loads(line) for line in body.splitlines() if line)
        low, high = _iso(since), _iso(until)
        yield from sorted((r for r in records if low <= r["created_at"] < high), key=lambda r: r["id"])

    def _keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            yield from (obj["Key"] for obj in page.get("Contents", []))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _hour_prefixes(since: datetime, until: datetime) -> Iterator[str]:
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < until:
        yield hour_prefix(_iso(hour))
        hour += timedelta(hours=1)


class Spooled(NamedTuple):
    """A spooled post, the fingerprint of its request, and the primary token
    it was made with, sealed (None for a Lifeboat token)."""

    post: Post
    fingerprint: str
    kept_token: SealedToken | None = None


class Spool:
    """Posts accepted while DynamoDB was unavailable, one object each.

    A post with an Idempotency-Key is stored under a key derived from it
    and written with If-None-Match, so a client retrying during the outage
    gets its first post back instead of spooling a second one.
    """

    def __init__(self, client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, post: Post, fingerprint: str, kept_token: SealedToken | None = None) -> Post:
        """Spool the post (with the sealed primary token it was made with,
        for the fold to keep), or return the post already spooled under the
        same Idempotency-Key. Raises StoreUnavailable if S3 is unreachable too."""
        key = spool_key(post)
        document = {"post": post.to_record(), "fingerprint": fingerprint}
        if kept_token is not None:
            document["kept_token"] = kept_token.to_record()
        body = json.dumps(document).encode("utf-8")
        try:
            with unavailable_as_domain_error("write spool"):
                self._client.put_object(
                    Bucket=self._bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json"
                )
            return post
        except ClientError as exc:
            if error_code(exc) != "PreconditionFailed":
                raise
        spooled, spooled_fingerprint, _ = self.read(key)
        if spooled_fingerprint != fingerprint:
            raise ValidationFailed(
                "this Idempotency-Key was already used for a different post", code="idempotency_key_reused"
            )
        return spooled

    def keys(self, limit: int) -> list[str]:
        with unavailable_as_domain_error("list spool"):
            response = self._client.list_objects_v2(Bucket=self._bucket, Prefix=SPOOL_PREFIX, MaxKeys=limit)
        return [obj["Key"] for obj in response.get("Contents", [])]

    def read(self, key: str) -> Spooled:
        with unavailable_as_domain_error("read spool"):
            body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        document = json.loads(body)
        kept_token = SealedToken.from_record(document.get("kept_token"))
        return Spooled(Post.from_record(document["post"]), document["fingerprint"], kept_token)

    def delete(self, key: str) -> None:
        with unavailable_as_domain_error("delete spool"):
            self._client.delete_object(Bucket=self._bucket, Key=key)


def spool_key(post: Post) -> str:
    if post.idempotency_key:
        digest = hashlib.sha256(post.idempotency_key.encode()).hexdigest()
        return f"{SPOOL_PREFIX}{post.author}/key-{digest}.json"
    return f"{SPOOL_PREFIX}{post.author}/{post.id}.json"
