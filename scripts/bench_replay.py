"""Benchmark the replay: how close it gets to the primary's rate limit.

5,000 posts from 500 authors are replayed by `Recovery.replay` into the
fake primary (its own process, 50 ms latency, 200 requests/s limit), which
is then read back: every author's posts in the order written, none twice,
none missing. Two stores:

- `--store memory` (default): the posts in the in-memory stores of
  devtools/fakes/posts.py (same contract as the DynamoDB store, tested in
  tests/functional/test_store_contract.py), so the replay alone is
  measured; the lease and health items stay on moto (in process).
- `--store dynamodb`: the local stack's real store. The posts are written
  through `PostStore.create_post` into DynamoDB on a moto server patched
  as the local stack's (devtools/localaws.py), in its own process
  (`--moto-in-process`: in this one, as ./scripts/run embeds it), and the
  replay runs the real `BacklogStore` against it over HTTP.

Each of `--runs` runs starts from a fresh store; printed per run and as
the median: posts/s as a fraction of the limit, duplicates, order
violations, missing posts, 429s; and a one-at-a-time run for comparison
(`--sequential-posts 0` skips it). `--json` prints one JSON document.
Usage: .venv/bin/python -m scripts.bench_replay [--store memory|dynamodb]
       [--posts N] [--authors N] [--concurrency N] [--runs N]
       [--sequential-posts N] [--moto-in-process] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

LIMIT_RPS = 200
LATENCY_MS = 50
TOKEN = "bench-primary-token"
TABLE = "lifeboat-local"
ROOT = Path(__file__).resolve().parent.parent


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


def write_backlog(posts_store, posts: int, authors: int) -> dict[str, list[str]]:
    """`posts` posts from `authors` authors, round robin, in id order; each
    author's post ids in the order they were written."""
    from chalicelib.core import ids
    from chalicelib.core.models import Post

    make_id = ids.UlidFactory()
    written = defaultdict(list)
    for n in range(posts):
        author, post_id = f"author{n % authors}", make_id.new()
        created_at = ids.iso_from_millis(ids.ulid_millis(post_id))
        post = Post(id=post_id, author=author, text=f"post {n} by {author}", created_at=created_at)
        posts_store.create_post(post, "bench", 0, 0)
        written[author].append(post_id)
    return written


@contextlib.contextmanager
def backlog_world(store: str, in_process: bool = False):
    """A fresh world for one run: yields (post store, backlog store). The
    lease and health items are on moto either way. "memory": the posts in
    the in-memory stores of devtools/fakes/posts.py, moto in process (mock_aws).
    "dynamodb": the posts in the real DynamoDB stores on a moto server
    patched as the local stack's, reached over HTTP at AWS_ENDPOINT_URL
    (see `moto_server`)."""
    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema

    if store == "memory":
        from moto import mock_aws

        from devtools.fakes.posts import in_memory_stores
        from devtools.localaws import serialize_moto_dynamodb

        serialize_moto_dynamodb()
        with mock_aws():
            wiring.reset()
            schema.ensure_resources(aws.new_client("dynamodb"), aws.new_client("s3"), TABLE, TABLE)
            yield in_memory_stores()
        return
    with moto_server(in_process) as url:
        os.environ["AWS_ENDPOINT_URL"] = url
        try:
            wiring.reset()
            schema.ensure_resources(wiring.dynamodb(), wiring.s3(), TABLE, TABLE)
            yield wiring.post_store(), wiring.backlog_store()
        finally:
            os.environ.pop("AWS_ENDPOINT_URL", None)
            wiring.reset()


@contextlib.contextmanager
def moto_server(in_process: bool):
    """A moto server patched as the local stack's (devtools.localaws): its
    own process by default, so that moto's CPU (it parses every update
    expression of every item) does not compete with the replay's threads
    for one interpreter lock, as DynamoDB would not; in this process with
    `in_process`, as ./scripts/run embeds it."""
    if in_process:
        from devtools.localaws import start_moto_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request it serves
        server, url = start_moto_server()
        try:
            yield url
        finally:
            server.stop()
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.bench_replay", "--serve-moto"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        yield re.search(r"(http://\S+)", process.stdout.readline()).group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve_moto() -> None:
    """--serve-moto: a patched moto server until SIGTERM; prints its URL."""
    from devtools.localaws import start_moto_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server, url = start_moto_server()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"moto: {url}", flush=True)
    stop.wait()
    server.stop()


def replay_once(
    store_kind: str,
    posts: int,
    authors: int,
    concurrency: int,
    max_rps: int,
    primary_url: str,
    in_process: bool = False,
) -> dict:
    """A fresh world: write the backlog, replay it, check the primary."""
    from chalicelib import wiring
    from chalicelib.upstream.generic import GenericIngestUpstream

    fetch(f"{primary_url}/control/reset", method="POST")
    with backlog_world(store_kind, in_process) as (posts_store, store):
        written = write_backlog(posts_store, posts, authors)
        if store_kind == "dynamodb":
            deliver_stream()
        recovery = wiring.recovery()
        recovery._store = store
        recovery._settings = dataclasses.replace(
            wiring.settings(), replay_concurrency=concurrency, replay_max_rps=float(max_rps)
        )
        recovery._upstream = GenericIngestUpstream(primary_url, TOKEN, timeout_seconds=5)
        started = time.perf_counter()
        report = recovery.replay(lambda: 900.0)
        elapsed = time.perf_counter() - started
        backlog = len(store.backlog_window(1))
    received = fetch(f"{primary_url}/received")
    stats = fetch(f"{primary_url}/stats")
    return {
        "store": store_kind,
        "posts": posts,
        "seconds": elapsed,
        "posts_per_second": report.sent / elapsed,
        "ratio": report.sent / elapsed / LIMIT_RPS,
        "sent": report.sent,
        "retries": report.retries,
        "stopped_because": report.stopped_because,
        "rejected_429": stats.get("rejected_429", 0),
        **check_received(received, stats, written, posts),
        "backlog_after": backlog,
    }


def deliver_stream() -> None:
    """What the stream derives from the backlog's writes, as Lambda would
    apply it before the replay runs: the counts the replay reads first (it
    reads its window only when they say the backlog holds posts)."""
    from chalicelib import wiring
    from devtools.streams import StreamPoller, stream_arn, streams_client

    arn = stream_arn(wiring.dynamodb(), TABLE)
    StreamPoller(streams_client(), arn, lambda event: wiring.stream_consumer().handle(event["Records"])).poll()


def check_received(received: list[dict], stats: dict, written: dict[str, list[str]], posts: int) -> dict:
    """What the primary got, against what was written: each author's posts
    in the order written, none twice, none missing."""
    ids = [post["id"] for post in received]
    by_author = defaultdict(list)
    for post in received:
        by_author[post["author"]].append(post["id"])
    violations = sum(by_author.get(author, []) != expected for author, expected in written.items())
    return {
        "duplicates": len(ids) - len(set(ids)) + stats.get("duplicates", 0),
        "order_violations": violations,
        "missing": posts - len(set(ids)),
    }


def summary(runs: list[dict]) -> dict:
    """The median run by ratio, with every run's ratio and the worst checks."""
    ratios = [run["ratio"] for run in runs]
    median = sorted(runs, key=lambda run: run["ratio"])[len(runs) // 2]
    return {
        **median,
        "median_ratio": statistics.median(ratios),
        "ratios": ratios,
        "runs": len(runs),
        "duplicates": sum(run["duplicates"] for run in runs),
        "order_violations": sum(run["order_violations"] for run in runs),
        "missing": sum(run["missing"] for run in runs),
        "rejected_429": sum(run["rejected_429"] for run in runs),
        "backlog_after": max(run["backlog_after"] for run in runs),
    }


def describe(label: str, result: dict) -> str:
    return (
        f"{label}: {result['sent']}/{result['posts']} posts in {result['seconds']:.1f} s = "
        f"{result['posts_per_second']:.1f} posts/s = {result['ratio']:.2f} of the "
        f"primary's {LIMIT_RPS}/s limit; duplicates {result['duplicates']}, order violations "
        f"{result['order_violations']}, missing {result['missing']}, 429s {result['rejected_429']}, "
        f"retries {result['retries']}, backlog after {result['backlog_after']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("memory", "dynamodb"), default="memory")
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--authors", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-rps", type=int, default=1000, help="our cap; the primary's headers pace us below it")
    parser.add_argument(
        "--runs", type=int, default=1, help="concurrent runs, each on a fresh store; the median is reported"
    )
    parser.add_argument("--sequential-posts", type=int, default=300, help="0: no one-at-a-time run")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--moto-in-process", action="store_true", help="with --store dynamodb: moto in this process")
    parser.add_argument("--serve-moto", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_moto:
        serve_moto()
        return
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    process, url = start_primary()
    # powertools prints the runs' metrics (every 100 values): stdout is for the report.
    try:
        with contextlib.redirect_stdout(sys.stderr):
            runs, sequential = replay_all(args, url)
    finally:
        process.terminate()
        process.wait(timeout=10)
    _print_report(args, runs, sequential)


def replay_all(args: argparse.Namespace, url: str) -> tuple[list[dict], dict | None]:
    """The concurrent runs, and the one-at-a-time run (None without one)."""
    runs = [
        replay_once(args.store, args.posts, args.authors, args.concurrency, args.max_rps, url, args.moto_in_process)
        for _ in range(args.runs)
    ]
    if not args.sequential_posts:
        return runs, None
    authors = max(1, args.sequential_posts // 10)
    return runs, replay_once(args.store, args.sequential_posts, authors, 1, args.max_rps, url, args.moto_in_process)


def _print_report(args: argparse.Namespace, runs: list[dict], sequential: dict | None) -> None:
    concurrent = summary(runs)
    settings = {
        "store": args.store,
        "concurrency": args.concurrency,
        "cap_rps": args.max_rps,
        "limit_rps": LIMIT_RPS,
        "latency_ms": LATENCY_MS,
    }
    if args.json:
        print(json.dumps({"concurrent": concurrent, "sequential": sequential, "settings": settings}))
        return
    for n, run in enumerate(runs, 1):
        print(describe(f"run {n}", run))
    print(describe(f"concurrent (median of {len(runs)})", concurrent))
    if sequential:
        print(describe("sequential", sequential))
    print(
        f"settings: store {args.store}, concurrency {args.concurrency}, cap {args.max_rps}/s; "
        f"primary latency {LATENCY_MS} ms"
    )


if __name__ == "__main__":
    main()
