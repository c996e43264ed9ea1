"""S3 adapter for the static copies of the feeds, under feeds/ in the bucket
(`feeds.publisher` decides what to write; this module only writes it)."""

from __future__ import annotations

from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.feeds.render import CACHE_MAX_AGE_SECONDS, FeedKind, Timeline, static_key

STATIC_CACHE_CONTROL = f"public, max-age={CACHE_MAX_AGE_SECONDS}"


class StaticFeeds:
    """Writes `feeds/public.rss`, `feeds/users/{username}.atom` and so on.

    Each put replaces the whole document, so a repeated publish is harmless.
    """

    def __init__(self, client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, timeline: Timeline, kind: FeedKind, body: bytes) -> str:
        key = static_key(timeline, kind)
        with unavailable_as_domain_error("write static feed"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=kind.content_type,
                CacheControl=STATIC_CACHE_CONTROL,
            )
        return key

    def remove(self, timeline: Timeline) -> int:
        """Delete the timeline's copies (an account the primary suspended).
        S3 deletes a missing key without complaint. Returns the keys deleted."""
        keys = [static_key(timeline, kind) for kind in FeedKind]
        with unavailable_as_domain_error("delete static feed"):
            for key in keys:
                self._client.delete_object(Bucket=self._bucket, Key=key)
        return len(keys)
