"""The S3 side of the mirror's inbox: list `mirror/inbox/`, stream an
object from a byte offset, and move it to `mirror/done/` or
`mirror/rejected/` (CopyObject, then DeleteObject; a rejection writes its
`<name>.reason.json` first). Every read and copy names the ETag listed, so
an object replaced meanwhile is never taken for the one that was read."""

from __future__ import annotations

import json
from collections.abc import Iterator

from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError

from chalicelib.aws.clients import error_code, unavailable_as_domain_error
from chalicelib.errors import StoreUnavailable
from chalicelib.mirror.inbox import (
    DONE_PREFIX,
    INBOX_PREFIX,
    REASON_SUFFIX,
    REJECTED_PREFIX,
    InboxObject,
    ObjectChanged,
)

CHUNK_BYTES = 1 << 20
# CopyObject's limit: a larger rejected object stays where it is, beside
# its reason (it is over MAX_OBJECT_BYTES anyway; the operator removes it).
COPY_MAX_BYTES = 5 << 30
# The object is no longer the version listed.
_CHANGED = frozenset({"PreconditionFailed", "NoSuchKey", "404", "412"})


class S3InboxBucket:
    def __init__(self, client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def list(self, limit: int) -> list[InboxObject]:
        """The first `limit` keys in key order (S3 lists keys sorted), after
        the console's folder marker `mirror/inbox/`; folder markers (keys
        ending in /) are not objects to read."""
        with unavailable_as_domain_error("list mirror inbox"):
            response = self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=INBOX_PREFIX, StartAfter=INBOX_PREFIX, MaxKeys=limit
            )
        return [
            InboxObject(item["Key"], item["Size"], item["ETag"])
            for item in response.get("Contents", [])
            if not item["Key"].endswith("/")
        ]

    def chunks(self, obj: InboxObject, offset: int) -> Iterator[bytes]:
        """The object's bytes from `offset` on; ObjectChanged if it is not
        the version listed."""
        if offset >= obj.size:
            return
        ranged = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with unavailable_as_domain_error("read mirror inbox object"):
                response = self._client.get_object(Bucket=self._bucket, Key=obj.key, IfMatch=obj.etag, **ranged)
        except ClientError as exc:
            if error_code(exc) in _CHANGED:
                raise ObjectChanged(obj.key) from exc
            raise
        body = response["Body"]
        try:
            with unavailable_as_domain_error("read mirror inbox object"):
                yield from body.iter_chunks(CHUNK_BYTES)
        except (ResponseStreamingError, IncompleteReadError) as exc:
            raise StoreUnavailable(f"read mirror inbox object: {type(exc).__name__}") from exc
        finally:
            body.close()

    def move_to_done(self, obj: InboxObject) -> bool:
        """False if the object changed since it was listed: it stays, to be
        read again."""
        return self._move(obj, DONE_PREFIX)

    def reject(self, obj: InboxObject, reason: dict) -> None:
        with unavailable_as_domain_error("write mirror inbox rejection"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=f"{REJECTED_PREFIX}{obj.name}{REASON_SUFFIX}",
                Body=json.dumps(reason).encode("utf-8"),
                ContentType="application/json",
            )
        if obj.size <= COPY_MAX_BYTES:
            self._move(obj, REJECTED_PREFIX)

    def _move(self, obj: InboxObject, prefix: str) -> bool:
        try:
            with unavailable_as_domain_error("move mirror inbox object"):
                self._client.copy_object(
                    Bucket=self._bucket,
                    Key=f"{prefix}{obj.name}",
                    CopySource={"Bucket": self._bucket, "Key": obj.key},
                    CopySourceIfMatch=obj.etag,
                )
        except ClientError as exc:
            if error_code(exc) in _CHANGED:
                return False
            raise
        with unavailable_as_domain_error("move mirror inbox object"):
            self._client.delete_object(Bucket=self._bucket, Key=obj.key)
        return True
