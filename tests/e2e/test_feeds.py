"""Feeds over real HTTP from ./scripts/run: a feed reader's fetch, a 304,
and the static copy the scheduled job publishes to the stack's S3."""

from __future__ import annotations

import urllib.error
import urllib.request

import feedparser
import pytest

from tests.e2e.stack import start_stack, wait_for

pytestmark = pytest.mark.e2e
ADMIN = "e2e-feeds-admin"


@pytest.fixture(scope="module")
def stack():
    # Every change stays younger than the settle time for the whole module:
    # what is tested is the 304 that needs no waiting.
    running = start_stack({"ADMIN_TOKEN": ADMIN, "ARCHIVE_SETTLE_SECONDS": "600"})
    yield running
    running.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_feed_reader_subscribes_and_the_job_publishes_the_static_copy(stack):
    token = stack.new_user("reader")
    texts = ["first from the lifeboat", "second <b>not bold</b> & more"]
    ids = [stack.call("POST", "/posts", {"text": text}, token=token).body["id"] for text in texts]
    # The feed's marker moves once the stream has delivered both posts (well under a second).
    wait_for(lambda: stack.call("GET", "/api/v1/accounts/lookup?acct=reader").body["statuses_count"] == 2, timeout=10)

    # A reader fetches the live feed and sees both posts, newest first.
    feed_url = f"{stack.base_url}/users/reader/feed.atom"
    status, headers, body = get(feed_url)
    parsed = feedparser.parse(body)
    assert status == 200 and parsed.bozo == 0
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert [entry.id.rsplit(":", 1)[1] for entry in parsed.entries] == list(reversed(ids))
    assert parsed.feed.links[0].href == feed_url  # PUBLIC_BASE_URL follows the stack's own port

    # Right after the posts, the body already shows the marker's last change,
    # so a repeated poll with the reader's validator is a 304 at once.
    assert headers["Cache-Control"] == "public, max-age=30"
    assert get(feed_url, {"If-None-Match": headers["ETag"]})[0] == 304

    # The scheduled job publishes the same document to the stack's S3.
    s3 = stack.aws_client("s3")

    def static_copy():
        try:
            stored = s3.get_object(Bucket="lifeboat-local", Key="feeds/users/reader.atom")
        except s3.exceptions.NoSuchKey:
            return None
        return stored if stored["Body"].read() == get(feed_url)[2] else None

    assert wait_for(static_copy, timeout=20)["ContentType"] == "application/atom+xml; charset=utf-8"

    # The same copy is on the stack's own origin, where the web client reads it
    # when the API does not answer, as CloudFront serves it deployed.
    status, headers, body = get(f"{stack.base_url}/feeds/users/reader.atom")
    assert (status, body) == (200, get(feed_url)[2])
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert get(f"{stack.base_url}/feeds/users/reader.atom", {"If-None-Match": headers["ETag"]})[0] == 304
    missing_status, _, missing = get(f"{stack.base_url}/feeds/users/nobody.atom")
    assert missing_status == 404 and b'"not_found"' in missing
