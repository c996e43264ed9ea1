"""One contract, two implementations: the static feed copies, written by
the S3 `StaticFeeds` (on moto) and by the in-memory fake."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.feeds.render import PUBLIC_TIMELINE, FeedKind, Timeline
from chalicelib.feeds.static import STATIC_CACHE_CONTROL, StaticFeeds
from devtools.fakes.feeds import InMemoryStaticFeeds, StaticObject
from tests.conftest import BUCKET


class S3Copies:
    def __init__(self) -> None:
        self.static = StaticFeeds(wiring.s3(), BUCKET)

    def read(self, key: str) -> StaticObject:
        stored = wiring.s3().get_object(Bucket=BUCKET, Key=key)
        return StaticObject(stored["Body"].read(), stored["ContentType"], stored["CacheControl"])

    def keys(self) -> set[str]:
        listed = wiring.s3().list_objects_v2(Bucket=BUCKET, Prefix="feeds/")
        return {entry["Key"] for entry in listed.get("Contents", [])}


class InMemoryCopies:
    def __init__(self) -> None:
        self.static = InMemoryStaticFeeds()

    def read(self, key: str) -> StaticObject:
        return self.static.objects[key]

    def keys(self) -> set[str]:
        return set(self.static.objects)


@pytest.fixture(params=["dynamodb", "memory"])
def copies(request):
    # "dynamodb" names the AWS side (here S3), as in every contract suite.
    if request.param == "memory":
        return InMemoryCopies()
    request.getfixturevalue("moto")
    return S3Copies()


@pytest.mark.parametrize(
    ("timeline", "kind", "key"),
    [
        (PUBLIC_TIMELINE, FeedKind.RSS, "feeds/public.rss"),
        (Timeline("alice"), FeedKind.ATOM, "feeds/users/alice.atom"),
    ],
)
def test_a_copy_is_stored_under_its_timelines_key_with_its_headers(copies, timeline, kind, key):
    assert copies.static.put(timeline, kind, b"<feed/>") == key
    assert copies.read(key) == StaticObject(b"<feed/>", kind.content_type, STATIC_CACHE_CONTROL)


def test_a_new_copy_replaces_the_old_one_whole(copies):
    copies.static.put(Timeline("alice"), FeedKind.RSS, b"<rss>old and long</rss>")
    copies.static.put(Timeline("alice"), FeedKind.RSS, b"<rss/>")
    assert copies.read("feeds/users/alice.rss").body == b"<rss/>"
    assert copies.keys() == {"feeds/users/alice.rss"}


def test_each_kind_of_a_timeline_is_its_own_copy(copies):
    for kind in FeedKind:
        copies.static.put(PUBLIC_TIMELINE, kind, kind.value.encode())
    assert copies.keys() == {"feeds/public.rss", "feeds/public.atom"}
    assert copies.read("feeds/public.atom").body == b"atom"
