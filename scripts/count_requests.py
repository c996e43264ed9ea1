"""Count the AWS requests and estimate the DynamoDB write units per accepted post.

Runs the real write path (Chalice's test client, moto in-process) and counts
every AWS call with a botocore event hook; write units are estimated from
the items actually sent, with DynamoDB's published rules:
  - a standard write costs 1 WCU per started KB of the item;
  - a write inside TransactWriteItems costs 2 WCUs per started KB;
  - each global secondary index whose keys a Put's item carries costs 1 WCU
    per started KB of the entry it projects (schema.py: the timeline
    indexes project a few attributes, Backlog all of them).
A post's rate limit is a read (GetItem of its window, no write unit): the
stream counts the post (see docs/DESIGN.md, "The rate limit on posts").
Then the table's stream, read as Lambda reads it (devtools/streams.py), is
handed to the app's stream handler, and its writes are counted apart: once
with every post's record delivered alone (a quiet stack, the worst case)
and once in one batch (a busy one).
Usage: .venv/bin/python -m scripts.count_requests [--posts N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import Counter

GSI_KEYS = {"AuthorPK", "PublicPK", "BacklogPK"}


def on_moto(**settings: str) -> None:
    """The environment of a counting script: moto in process, never a real
    endpoint or account, with the script's own settings."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", **settings
    )
    for name in ("AWS_ENDPOINT_URL", "UPSTREAM_TOKEN"):
        os.environ.pop(name, None)


def item_size(item: dict) -> int:
    """DynamoDB's item size: attribute names plus values, in bytes (close
    enough for numbers: their digits; binary by its length)."""
    size = 0
    for name, typed in item.items():
        size += len(name.encode())
        ((kind, value),) = typed.items()
        if kind == "B":
            size += len(value)
        elif kind in ("S", "N"):
            size += len(str(value).encode("utf-8", "surrogatepass"))
        else:
            size += len(json.dumps(value, default=str))
    return size


def index_units(item: dict) -> int:
    """1 WCU per started KB of each index entry a new item makes."""
    from chalicelib.aws import schema

    units = 0
    for index in (schema.BY_AUTHOR_INDEX, schema.PUBLIC_INDEX, schema.BACKLOG_INDEX):
        keys = schema.index_keys(index)
        if not set(keys) <= set(item):
            continue
        projection = schema.table_definition("x")["GlobalSecondaryIndexes"]
        (spec,) = [entry["Projection"] for entry in projection if entry["IndexName"] == index]
        kept = set(item) if spec["ProjectionType"] == "ALL" else {"PK", "SK", *keys, *spec.get("NonKeyAttributes", [])}
        units += math.ceil(max(item_size({name: item[name] for name in kept & set(item)}), 1) / 1024)
    return units


def write_units(operation: str, params: dict) -> float:
    if operation == "TransactWriteItems":
        units = 0.0
        for entry in params["TransactItems"]:
            ((kind, op),) = entry.items()
            item = op.get("Item") or op["Key"]
            kb = math.ceil(max(item_size(item), 1) / 1024)
            units += 2 * kb
            if kind == "Put":
                units += index_units(item)
        return units
    if operation == "BatchWriteItem":
        # Standard writes: 1 WCU per started KB, and again per index the
        # item carries (a delete is counted at its key's size).
        units = 0.0
        for requests in params["RequestItems"].values():
            for request in requests:
                item = request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"]
                kb = math.ceil(max(item_size(item), 1) / 1024)
                units += kb * (1 + len(GSI_KEYS & set(item)))
        return units
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        item = params.get("Item") or params["Key"]
        units = math.ceil(max(item_size(item), 1) / 1024)
        return units + (index_units(item) if operation == "PutItem" else 0)
    return 0.0


class Recorder:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.wcu = 0.0

    def __call__(self, model, params, **_):
        self.calls[f"{model.service_model.service_id}:{model.name}"] += 1
        self.wcu += write_units(model.name, params)

    def reset(self) -> None:
        self.calls.clear()
        self.wcu = 0.0


def measure(posts: int) -> None:
    from chalice.test import Client
    from moto import mock_aws

    import app
    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from devtools.localaws import patch_moto_dynamodb
    from devtools.streams import StreamPoller, stream_arn, streams_client

    patch_moto_dynamodb()
    with mock_aws(), Client(app.app, stage_name="local") as client:
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), "lifeboat-local", "lifeboat-local")
        arn = stream_arn(wiring.dynamodb(), "lifeboat-local")
        stream = StreamPoller(streams_client(), arn, lambda event: app.stream_changes(event, None), batch_size=1000)
        recorder = Recorder()
        for built in (wiring.dynamodb(), wiring.s3()):
            built.meta.events.register("before-parameter-build", recorder)

        def post(body, headers=None):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}", **(headers or {})}
            reply = client.http.post("/posts", headers=headers, body=json.dumps(body))
            assert reply.status_code == 201, reply.body

        admin = {"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"}
        created = client.http.post("/admin/users", headers=admin, body=json.dumps({"username": "counter"}))
        assert created.status_code == 201, created.body
        token = json.loads(created.body)["token"]
        text = "A typical post of about a hundred characters, written while the primary was down. " * 1

        def report(label, run, per=posts):
            recorder.reset()
            run()
            per_post = {name: round(count / per, 3) for name, count in sorted(recorder.calls.items())}
            print(
                f"{label}: {sum(recorder.calls.values()) / per:.2f} AWS requests/post {per_post}, "
                f"~{recorder.wcu / per:.2f} WCU/post"
            )

        report("first post, cold token cache", lambda: post({"text": text}), per=1)
        stream.poll()
        report("plain post, warm cache", lambda: [post({"text": text}) for _ in range(posts)])
        report("  its stream, one batch", stream.poll)
        report(
            "post with Idempotency-Key",
            lambda: [post({"text": text}, {"Idempotency-Key": f"k{i}"}) for i in range(posts)],
        )
        report("  its stream, one batch", stream.poll)

        def alone():
            for _ in range(posts):
                post({"text": text})
                stream.poll()

        report("plain post and its stream, each record alone (worst case)", alone)

        def archive_all():
            job = wiring.maintenance()
            job._clock = lambda: 10**10  # past every settle window
            job.run()

        report("maintenance run (archive), amortised", archive_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args()
    # POSTS_PER_MINUTE: counted like production, never reached by this one busy user.
    on_moto(ADMIN_TOKEN="count-requests-admin", POSTS_PER_MINUTE="1000000")
    measure(args.posts)


if __name__ == "__main__":
    main()
