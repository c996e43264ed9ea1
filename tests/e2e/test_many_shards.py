"""./scripts/run with WRITE_SHARDS=512, the plan's figure for 150,000
posts/s: it starts (its readiness probe, /status, answers within the
stack's own READY_TIMEOUT_SECONDS), takes a post, and its scheduled job
archives the post and publishes it, having visited every shard once and
then only the one the stream noted."""

from __future__ import annotations

import pytest

from tests.e2e.stack import start_stack, wait_for

pytestmark = pytest.mark.e2e
ADMIN = "e2e-many-shards-admin"
# The first run reads every one of the 512 shards once; the runs after it are quick.
FIRST_RUNS_SECONDS = 180


def test_the_stack_starts_and_archives_and_publishes_with_512_write_shards():
    stack = start_stack({"ADMIN_TOKEN": ADMIN, "WRITE_SHARDS": "512", "READY_TIMEOUT_SECONDS": "20"})
    try:
        status = stack.call("GET", "/status")
        assert status.status == 200 and status.body["backlog"] == 0
        user = stack.call("POST", "/admin/users", {"username": "wide"}, token=ADMIN)
        assert user.status == 201, user.body
        posted = stack.call("POST", "/posts", {"text": "one of 512"}, token=user.body["token"])
        assert posted.status == 201, posted.body
        post_id = posted.body["id"]

        s3 = stack.aws_client("s3")

        def published_and_archived():
            archived = s3.list_objects_v2(Bucket="lifeboat-local", Prefix="archive/").get("Contents", [])
            bodies = [s3.get_object(Bucket="lifeboat-local", Key=obj["Key"])["Body"].read() for obj in archived]
            try:
                public = s3.get_object(Bucket="lifeboat-local", Key="feeds/public.atom")["Body"].read()
            except s3.exceptions.NoSuchKey:
                return False
            return post_id.encode() in public and any(post_id.encode() in body for body in bodies)

        assert wait_for(published_and_archived, timeout=FIRST_RUNS_SECONDS, interval=1)
    finally:
        stack.stop()
