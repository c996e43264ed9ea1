"""Measure the mirror's S3 inbox: AWS requests per object and per line, and
the time the local stack takes to ingest one object.

- `--count`: the real `Inbox` over its S3 and DynamoDB adapters (moto in
  process), one object of N lines (50 accounts, 50 credentials, 200 follows,
  the rest posts by those accounts), every AWS call counted with a botocore
  event hook.
- default: `./scripts/run` with MIRROR_ENABLED, as a user runs it; the object
  is put into `mirror/inbox/` and the time until it is in `mirror/done/` is
  taken (polled every 0.1 s; the stack's scheduler runs the job every
  second, so up to a second of each figure is waiting for the next run).
  `--runs` objects, each with new post ids; the median is printed.
Usage: .venv/bin/python -m scripts.bench_inbox [--count] [--lines N] [--runs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time

from scripts.count_requests import Recorder

TEXT = "A typical post of about a hundred characters, pushed to the inbox by the primary's own export."
AUTHORS = 50
FOLLOWS = 200


def export_lines(lines: int, run: int = 0) -> bytes:
    """`lines` change documents: accounts, their credentials, follows, then posts."""
    documents: list[dict] = []
    for n in range(AUTHORS):
        documents.append({"type": "account", "username": f"user{n}", "display_name": f"User {n}",
                          "created_at": "2026-01-01T00:00:00.000Z", "suspended": False})  # fmt: skip
        digest = hashlib.sha256(f"token-{n}".encode()).hexdigest()
        documents.append({"type": "credential", "username": f"user{n}", "token_sha256": digest,
                          "scopes": "read write follow", "revoked": False})  # fmt: skip
    for n in range(FOLLOWS):
        follower, followee = n % AUTHORS, (n * 7 + 1) % AUTHORS
        if follower != followee:
            documents.append({"type": "follow", "follower": f"user{follower}", "followee": f"user{followee}",
                              "active": True})  # fmt: skip
    for n in range(lines - len(documents)):
        documents.append({"type": "post", "id": f"{run}-{n}", "author": f"user{n % AUTHORS}", "text": TEXT,
                          "created_at": f"2026-12-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
                          "in_reply_to": None, "deleted": False})  # fmt: skip
    return "".join(json.dumps(document) + "\n" for document in documents).encode()


def count(lines: int) -> None:
    from moto import mock_aws

    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from chalicelib.upstream.tokens import ensure_key
    from devtools.localaws import patch_moto_dynamodb

    patch_moto_dynamodb()
    os.environ["MIRROR_ENABLED"] = "true"
    with mock_aws():
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), "lifeboat-local", "lifeboat-local")
        ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
        body = export_lines(lines)
        wiring.s3().put_object(Bucket="lifeboat-local", Key="mirror/inbox/export.jsonl", Body=body)
        recorder = Recorder()
        for client in (wiring.dynamodb(), wiring.s3(), wiring.kms()):
            client.meta.events.register("before-parameter-build", recorder)
        report = wiring.mirror_inbox().run(lambda: 600.0)
        assert report.objects == 1 and report.lines == lines, report
        s3 = {name: number for name, number in sorted(recorder.calls.items()) if name.startswith("S3:")}
        rest = {name: number for name, number in sorted(recorder.calls.items()) if not name.startswith("S3:")}
        total = sum(recorder.calls.values())
        print(f"one object of {lines} lines ({len(body)} bytes): {total} AWS requests, {total / lines:.4f} per line")
        print(f"  S3 (per object): {s3}")
        print(f"  DynamoDB/KMS: {rest} (the mirror's writes, as for the feed)")
        print(f"  ~{recorder.wcu / lines:.2f} WCU per line")


def local_stack(lines: int, runs: int) -> None:
    from tests.e2e.stack import start_stack

    stack = start_stack({"MIRROR_ENABLED": "true"})
    try:
        s3 = stack.aws_client("s3")
        seconds = []
        for run in range(runs):
            key = f"bench-{run}.jsonl"
            body = export_lines(lines, run)
            started = time.monotonic()
            s3.put_object(Bucket="lifeboat-local", Key=f"mirror/inbox/{key}", Body=body)
            while "Contents" not in s3.list_objects_v2(Bucket="lifeboat-local", Prefix=f"mirror/done/{key}"):
                time.sleep(0.1)
            seconds.append(time.monotonic() - started)
            print(f"run {run + 1}: {lines} lines ({len(body)} bytes) in {seconds[-1]:.2f} s", flush=True)
        print(f"median of {runs}: {statistics.median(seconds):.2f} s, {lines / statistics.median(seconds):.0f} lines/s")
        print(f"load average: {os.getloadavg()}")
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", action="store_true", help="count requests in process instead of timing the stack")
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.count:
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        os.environ.pop("AWS_ENDPOINT_URL", None)
        count(args.lines)
    else:
        local_stack(args.lines, args.runs)


if __name__ == "__main__":
    main()
