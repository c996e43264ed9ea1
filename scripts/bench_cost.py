"""What a post costs on AWS, measured on the wire of the local stack.

Starts a moto server, puts a counting proxy (devtools/counting_proxy.py) in
front of it and runs ./scripts/run against the proxy with production's
WRITE_SHARDS and the fake primary held down (the outage Lifeboat is for).
Then --users users post --posts posts from a thread pool (every 5th with an
Idempotency-Key), and the script prints, per accepted post:
  - the write window (while posting): AWS requests by operation, estimated
    DynamoDB write and read units, S3 requests, and the cost per million posts;
  - an idle window of the same length, measured right after the write window
    (its length is only known then): the scheduled jobs' background requests,
    spread over the same posts. It includes any deferred work for these posts.
Write units come from the DynamoDB request bodies sent (devtools/cost_model.py);
an UpdateItem is sized from its key and the values it sends, a lower bound.
Lambda is priced at production's memory and an assumed LAMBDA_MS per request.
Usage: .venv/bin/python -m scripts.bench_cost [--users N] [--posts N] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.aws import schema  # noqa: E402
from devtools import cost_model  # noqa: E402
from devtools.counting_proxy import Call, CountingProxy  # noqa: E402
from devtools.localaws import start_moto_server  # noqa: E402
from devtools.stack_process import start  # noqa: E402
from scripts.bench_local import Client, create_users, take_primary_down  # noqa: E402

LAMBDA_MS = 50  # assumed billed duration of one API request's Lambda invocation
PROD_STAGE = "prod"
CLIENTS = 8
STACK_ENV = {
    "SEED_PRIMARY": "false",
    "WRITE_SHARDS": "16",  # production's
    # Far above what a few users posting in a loop reach; still checked.
    "POSTS_PER_MINUTE": "1000000",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
S3_PUT_CLASS = ("PUT ", "POST ", "GET bucket")  # PUT, COPY, POST, LIST
S3_FREE = ("DELETE ",)


def prod_lambda_memory_mb() -> int:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return int(config["stages"][PROD_STAGE].get("lambda_memory_size", 128))


def send_posts(base_url: str, tokens: list[str], posts: int) -> int:
    """Post `posts` posts, the users taking turns; the number accepted."""

    def one(n: int) -> bool:
        extra = {"Idempotency-Key": f"bench-cost-{n}"} if n % 5 == 0 else None
        client = Client(base_url)
        try:
            status, _ = client.post(
                "/posts", {"text": f"Post {n}: the primary is down."}, tokens[n % len(tokens)], extra
            )
        finally:
            client.close()
        return status == 201

    with ThreadPoolExecutor(CLIENTS) as pool:
        return sum(pool.map(one, range(posts)))


def window_summary(calls: list[Call], accepted: int, api_requests: int, seconds: float) -> dict:
    """Per accepted post: requests by operation, units, S3 requests, costs."""
    indexes = cost_model.indexes_of(schema.table_definition("t"))
    per = max(accepted, 1)
    operations = Counter(f"{call.service}:{call.operation}" for call in calls)
    dynamodb = [call for call in calls if call.service == "dynamodb" and call.request is not None]
    write_units = sum(cost_model.request_write_units(c.operation, c.request, indexes) for c in dynamodb)
    read_units = sum(cost_model.request_read_units(c.operation, c.request, c.answer or {}) for c in dynamodb)
    s3 = [call.operation for call in calls if call.service == "s3"]
    s3_puts = sum(op.startswith(S3_PUT_CLASS) for op in s3)
    s3_gets = sum(not op.startswith(S3_PUT_CLASS + S3_FREE) for op in s3)
    usage = cost_model.Usage(
        api_requests=api_requests / per,
        lambda_invocations=api_requests / per,
        lambda_memory_mb=prod_lambda_memory_mb(),
        lambda_ms=LAMBDA_MS,
        write_units=write_units / per,
        read_units=read_units / per,
        s3_puts=s3_puts / per,
        s3_gets=s3_gets / per,
    )
    return {
        "seconds": round(seconds, 2),
        "aws_requests": round(len(calls) / per, 3),
        "by_operation": {name: round(count / per, 3) for name, count in sorted(operations.items())},
        "write_units": round(write_units / per, 3),
        "read_units": round(read_units / per, 3),
        "s3_requests": {"put_class": round(s3_puts / per, 3), "get_class": round(s3_gets / per, 3)},
        "cost_per_million_posts_usd": {
            name: round(value, 4) for name, value in cost_model.cost_per_million(usage).items()
        },
    }


def measure(users: int, posts: int) -> dict:
    server, moto_url = start_moto_server()
    proxy = CountingProxy(moto_url).start()
    stack = start({**STACK_ENV, "AWS_ENDPOINT_URL": proxy.url})
    try:
        take_primary_down(stack)
        tokens = create_users(stack, users)
        proxy.recording.take()  # setup is not a post's cost
        started = time.monotonic()
        accepted = send_posts(stack.base_url, tokens, posts)
        write_seconds = time.monotonic() - started
        write_calls = proxy.recording.take()
        time.sleep(write_seconds)  # the idle window: a measured length of time, not a wait for a condition
        idle_calls = proxy.recording.take()
    finally:
        stack.stop()
        proxy.shutdown()
        server.stop()
    return {
        "users": users,
        "posts": posts,
        "accepted": accepted,
        "assumptions": {
            "prices": f"{cost_model.PRICES_REGION} list prices dated {cost_model.PRICES_DATED}",
            "lambda_memory_mb": prod_lambda_memory_mb(),
            "lambda_ms_per_request": LAMBDA_MS,
            "update_item_write_units": "lower bound: key + values sent",
            "idle_window": "same length as the write window, measured right after it; no API or Lambda requests",
            "not_priced": "KMS and any other service's requests (counted in by_operation)",
        },
        "write": window_summary(write_calls, accepted, posts, write_seconds),
        "idle": window_summary(idle_calls, accepted, 0, write_seconds),
    }


def print_report(result: dict) -> None:
    print(f"{result['accepted']}/{result['posts']} posts accepted from {result['users']} users; per accepted post:")
    for label in ("write", "idle"):
        window = result[label]
        costs = window["cost_per_million_posts_usd"]
        print(f"\n{label} window ({window['seconds']} s): {window['aws_requests']} AWS requests")
        for name, count in window["by_operation"].items():
            print(f"  {name:<40} {count}")
        print(f"  ~{window['write_units']} WU, ~{window['read_units']} RU; S3 {window['s3_requests']}")
        print("  $ per million posts: " + ", ".join(f"{name} {value:.4f}" for name, value in costs.items()))
    print("\nAssumptions: " + "; ".join(f"{k}: {v}" for k, v in result["assumptions"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    result = measure(args.users, args.posts)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
