"""Benchmark the replay: how close it gets to the primary's rate limit.

5,000 posts from 500 authors are replayed into the fake primary (its own
process, 50 ms latency, 200 requests/s limit). The posts live in the
in-memory stores of devtools/fakes/posts.py (same contract as the DynamoDB store,
tested in tests/functional/test_store_contract.py): moto deep-copies the
whole table on every transaction, which would measure moto instead of the
replay. The lease and health items stay on moto. Prints the achieved posts/s as a fraction of the limit, duplicates
and per-author order violations, and a one-at-a-time run for comparison.
Usage: .venv/bin/python -m scripts.bench_replay [--posts N] [--authors N]
       [--concurrency N] [--sequential-posts N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict

LIMIT_RPS = 200
LATENCY_MS = 50
TOKEN = "bench-primary-token"


def start_primary() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.fake_primary",
            "--token",
            TOKEN,
            "--latency-ms",
            str(LATENCY_MS),
            "--rate-limit",
            str(LIMIT_RPS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    return process, re.search(r"(http://\S+)", line).group(1)


def fetch(url: str, method: str = "GET") -> object:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def replay_once(posts: int, authors: int, concurrency: int, max_rps: int, primary_url: str) -> dict:
    """A fresh moto world: write the backlog, replay it, check the primary."""
    from moto import mock_aws

    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from chalicelib.core import ids
    from chalicelib.core.models import Post
    from chalicelib.upstream.generic import GenericIngestUpstream
    from devtools.fakes.posts import in_memory_stores
    from devtools.localaws import serialize_moto_dynamodb

    serialize_moto_dynamodb()
    fetch(f"{primary_url}/control/reset", method="POST")
    with mock_aws():
        wiring.reset()
        schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), "lifeboat-local", "lifeboat-local")
        posts_store, store = in_memory_stores()
        make_id = ids.UlidFactory()
        written = defaultdict(list)
        for n in range(posts):
            author, post_id = f"author{n % authors}", make_id.new()
            created_at = ids.iso_from_millis(ids.ulid_millis(post_id))
            posts_store.create_post(
                Post(id=post_id, author=author, text=f"post {n} by {author}", created_at=created_at)
            )
            written[author].append(post_id)
        recovery = wiring.recovery()
        recovery._store = store
        recovery._settings = dataclasses.replace(
            wiring.settings(), replay_concurrency=concurrency, replay_max_rps=float(max_rps)
        )
        recovery._upstream = GenericIngestUpstream(primary_url, TOKEN, timeout_seconds=5)
        started = time.perf_counter()
        report = recovery.replay(lambda: 900.0)
        elapsed = time.perf_counter() - started
        backlog = store.backlog_size()
    received = fetch(f"{primary_url}/received")
    stats = fetch(f"{primary_url}/stats")
    ids = [post["id"] for post in received]
    violations = 0
    for author, expected in written.items():
        got = [post["id"] for post in received if post["author"] == author]
        violations += got != expected
    return {
        "posts": posts,
        "seconds": elapsed,
        "posts_per_second": report.sent / elapsed,
        "sent": report.sent,
        "retries": report.retries,
        "rejected_429": stats.get("rejected_429", 0),
        "duplicates": len(ids) - len(set(ids)) + stats.get("duplicates", 0),
        "order_violations": violations,
        "missing": posts - len(set(ids)),
        "backlog_after": backlog,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--authors", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-rps", type=int, default=1000, help="our cap; the primary's headers pace us below it")
    parser.add_argument("--sequential-posts", type=int, default=300)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    process, url = start_primary()
    try:
        concurrent = replay_once(args.posts, args.authors, args.concurrency, args.max_rps, url)
        sequential = replay_once(args.sequential_posts, max(1, args.sequential_posts // 10), 1, args.max_rps, url)
    finally:
        process.terminate()
        process.wait(timeout=10)
    for label, result in (("concurrent", concurrent), ("sequential", sequential)):
        print(
            f"{label}: {result['sent']}/{result['posts']} posts in {result['seconds']:.1f} s = "
            f"{result['posts_per_second']:.1f} posts/s = {result['posts_per_second'] / LIMIT_RPS:.2f} of the "
            f"primary's {LIMIT_RPS}/s limit; duplicates {result['duplicates']}, order violations "
            f"{result['order_violations']}, missing {result['missing']}, 429s {result['rejected_429']}, "
            f"retries {result['retries']}, backlog after {result['backlog_after']}"
        )
    print(f"settings: concurrency {args.concurrency}, cap {args.max_rps}/s; primary latency {LATENCY_MS} ms")


if __name__ == "__main__":
    main()
