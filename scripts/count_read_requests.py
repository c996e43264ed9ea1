"""Count the DynamoDB requests of the read paths the mirror changes: a
conditional feed request answered 304, a feed body, a native public page,
a post by id and a Mastodon public page, with MIRROR_ENABLED off and on.

Runs the real routes (Chalice's test client, moto in-process) and counts
every DynamoDB call with a botocore event hook, as scripts/count_requests.py
does. With the mirror on, `--mirrored` posts by a mirrored account come in
through the real `Mirror` job (a scripted change feed).
Usage: .venv/bin/python -m scripts.count_read_requests [--mirrored 20]
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter

from scripts.count_requests import Recorder, on_moto


def measure(mirror_enabled: bool, mirrored: int, write_shards: int) -> dict[str, Counter]:
    from chalice.test import Client
    from moto import mock_aws

    import app
    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from chalicelib.mirror.service import Mirror
    from chalicelib.upstream.tokens import ensure_key
    from devtools.fakes.mirror import ScriptedChangeFeed
    from devtools.localaws import serialize_moto_dynamodb
    from devtools.streams import StreamPoller, stream_arn, streams_client

    os.environ["MIRROR_ENABLED"] = "true" if mirror_enabled else "false"
    os.environ["WRITE_SHARDS"] = str(write_shards)
    serialize_moto_dynamodb()
    with mock_aws(), Client(app.app, stage_name="local") as client:
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), "lifeboat-local", "lifeboat-local")
        admin = {"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}", "Content-Type": "application/json"}
        reply = client.http.post("/admin/users", headers=admin, body=json.dumps({"username": "alice"}))
        token = json.loads(reply.body)["token"]
        writer = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        post_ids = [
            json.loads(client.http.post("/posts", headers=writer, body=json.dumps({"text": f"post {n}"})).body)["id"]
            for n in range(20)
        ]
        if mirror_enabled:
            ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
            changes = [{"type": "account", "username": "bob", "created_at": "2026-01-01T00:00:00.000Z"}]
            changes += [
                {"type": "post", "id": f"u{n}", "author": "bob", "text": f"mirrored {n}", "deleted": False,
                 "created_at": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z"}
                for n in range(mirrored)
            ]  # fmt: skip
            Mirror(ScriptedChangeFeed(changes), wiring.mirror_store(), wiring.mirror_state(), 7).run(lambda: 60.0)

        # What the stream derives (the public timeline's chunks, the feed
        # markers) is applied before the reads are counted, as Lambda would.
        StreamPoller(
            streams_client(), stream_arn(wiring.dynamodb(), "lifeboat-local"), lambda e: app.stream_changes(e, None)
        ).poll()
        recorder = Recorder()
        wiring.dynamodb().meta.events.register("before-parameter-build", recorder)
        counts: dict[str, Counter] = {}

        def count(name: str, path: str, headers: dict | None = None, status: int = 200) -> dict:
            recorder.reset()
            answer = client.http.get(path, headers=headers or {})
            assert answer.status_code == status, (path, answer.status_code, answer.body)
            counts[name] = Counter(recorder.calls)
            return answer.headers

        feeds = ["/timeline/public/feed.atom", "/users/alice/feed.atom"]
        for feed in feeds + (["/users/bob/feed.atom"] if mirror_enabled else []):
            etag = count(f"{feed} (200)", feed)["ETag"]
            count(f"{feed} (304)", feed, {"If-None-Match": etag}, status=304)
        count("/timeline/public?limit=20", "/timeline/public?limit=20")
        count("/posts/{id}", f"/posts/{post_ids[0]}")
        count("/api/v1/timelines/public?limit=20", "/api/v1/timelines/public?limit=20")
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrored", type=int, default=20)
    parser.add_argument("--write-shards", type=int, default=4)
    args = parser.parse_args()
    on_moto(ADMIN_TOKEN="count-read-admin")
    for mirror_enabled in (False, True):
        for name, calls in measure(mirror_enabled, args.mirrored, args.write_shards).items():
            mode = "mirror on " if mirror_enabled else "mirror off"
            print(f"{mode}  {name:45} {sum(calls.values()):3} requests {dict(sorted(calls.items()))}")


if __name__ == "__main__":
    main()
