"""What the scheduled maintenance job costs at idle, counted on the wire.

A moto server runs in this process with a counting proxy in front of it
(devtools/counting_proxy.py); `./scripts/run` gets the proxy's address as
AWS_ENDPOINT_URL, the prod stage's settings with WRITE_SHARDS=512 (the
plan's figure, `--shards` to change it), and a schedule of
`--schedule-seconds`. Nothing is posted unless `--users` asks for a post
each before the primary is up (then they wait in the backlog, and at 512
shards the replay's window read, 2 Queries per shard at this proxy's ~40 ms
a request, can outlast the run: `--users 0` measures the idle job itself).
Once the primary is up and two more runs have passed (the first visits
every shard once), `--runs` runs are counted with no traffic at all.

Printed: AWS requests per run (= per minute: production runs the job once a
minute) by operation, and their total, which issue 14 bounds at 100. The
stream's own reads (dynamodbstreams) are shown apart: on AWS, Lambda polls
the stream for the consumer at no request charge, and it invokes the
consumer only when records arrive.
Usage: .venv/bin/python -m scripts.bench_idle [--shards 512] [--runs 3] [--primary up|down] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter

from devtools.counting_proxy import Call, CountingProxy
from devtools.localaws import start_moto_server
from devtools.stack_process import RunningStack, start, wait_for
from scripts.bench_cost import primary_state, stack_environment
from scripts.bench_local import Client, create_users, take_primary_down

BUDGET_PER_MINUTE = 100
# The first runs visit every shard once: minutes at 512 shards through moto on a loaded machine.
STARTUP_TIMEOUT_SECONDS = 600
# Runs left out after the primary is up: they archive and publish the posts made first.
WARMUP_RUNS = 2
STREAM_SERVICE = "dynamodbstreams"


def post_some(stack: RunningStack, tokens: list[str]) -> None:
    client = Client(stack.base_url)
    for n, token in enumerate(tokens):
        status, body = client.post("/posts", {"text": f"before the idle window {n}"}, token)
        if status not in (201, 202):
            raise RuntimeError(f"posting: {status} {body[:200]!r}")
    client.close()


def job_runs(calls: list[Call], since: float, gap: float) -> list[tuple[float, float]]:
    """The job's runs after `since`: bursts of non-stream calls separated
    by more than `gap` seconds."""
    times = sorted(call.at for call in calls if call.at >= since and call.service != STREAM_SERVICE)
    runs: list[list[float]] = []
    for moment in times:
        if runs and moment - runs[-1][1] <= gap:
            runs[-1][1] = moment
        else:
            runs.append([moment, moment])
    return [(a, b) for a, b in runs]


def progress(proxy: CountingProxy, since: float, gap: float) -> int:
    """The job's runs since `since` (told on stderr as they come)."""
    calls = proxy.calls()
    runs = job_runs(calls, since, gap)
    print(f"runs: {len(runs)}, calls: {len(calls)}", file=sys.stderr, flush=True)
    return len(runs)


def measure(args: argparse.Namespace) -> dict:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto, moto_url = start_moto_server()
    proxy = CountingProxy(moto_url).start()
    # One good health check is enough here: the idle job is the same after any number.
    overrides = {
        "WRITE_SHARDS": str(args.shards),
        "ARCHIVE_SETTLE_SECONDS": "2",
        "HEALTH_UP_AFTER": "1",
        **args.overrides,
    }
    env = stack_environment(proxy.url, args.schedule_seconds, overrides)
    gap = args.schedule_seconds / 2
    stack = start(env)
    print("stack started", file=sys.stderr, flush=True)
    try:
        if args.primary == "down":
            take_primary_down(stack)
        if args.users:
            post_some(stack, create_users(stack, args.users))
        print("posted; waiting for the primary to be up", file=sys.stderr, flush=True)
        wait_for(lambda: primary_state(stack) == args.primary, timeout=STARTUP_TIMEOUT_SECONDS, interval=0.5)
        up_at = time.monotonic()
        wanted = WARMUP_RUNS + args.runs + 1  # the last one may still be running
        wait_for(lambda: progress(proxy, up_at, gap) >= wanted, timeout=STARTUP_TIMEOUT_SECONDS, interval=2)
    finally:
        code = stack.stop()
    if code != 0:
        print(f"./scripts/run exited with {code}:\n" + "".join(stack.output[-40:]), file=sys.stderr)
    calls = proxy.calls()
    proxy.stop()
    moto.stop()
    runs = job_runs(calls, up_at, gap)[WARMUP_RUNS : WARMUP_RUNS + args.runs]
    start_at, end_at = runs[0][0], runs[-1][1]
    counted = [call for call in calls if start_at <= call.at <= end_at]
    job = Counter(call.name for call in counted if call.service != STREAM_SERVICE)
    stream = Counter(call.name for call in counted if call.service == STREAM_SERVICE)
    per_run = {name: n / len(runs) for name, n in sorted(job.items())}
    return {
        "settings": {"WRITE_SHARDS": args.shards, "primary": args.primary, **args.overrides},
        "runs": len(runs),
        "job_seconds": [round(b - a, 2) for a, b in runs],
        "requests_per_run_by_operation": per_run,
        "requests_per_minute": sum(per_run.values()),
        "budget_per_minute": BUDGET_PER_MINUTE,
        "stream_reads_per_run_not_billed": {name: n / len(runs) for name, n in sorted(stream.items())},
    }


def print_report(result: dict) -> None:
    settings = ", ".join(f"{k}={v}" for k, v in result["settings"].items())
    print(f"Maintenance job at idle ({settings}), {result['runs']} runs, seconds each: {result['job_seconds']}")
    print("AWS requests per run (production runs it once a minute), by operation:")
    for name, n in result["requests_per_run_by_operation"].items():
        print(f"  {name:<40} {n:8.1f}")
    total = result["requests_per_minute"]
    print(f"  {'total per minute':<40} {total:8.1f}   (budget {result['budget_per_minute']})")
    if result["stream_reads_per_run_not_billed"]:
        print("Stream reads by the local poller (Lambda's polling on AWS, not billed):")
        for name, n in result["stream_reads_per_run_not_billed"].items():
            print(f"  {name:<40} {n:8.1f}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=512)
    parser.add_argument("--users", type=int, default=0, help="users who post once before the idle window")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--schedule-seconds", type=float, default=8.0)
    parser.add_argument("--primary", choices=("up", "down"), default="up")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a stack setting to override")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.overrides = dict(item.split("=", 1) for item in args.set)
    return args


def main(argv: list[str] | None = None) -> int:
    result = measure(parse(argv))
    if "--json" in (argv or sys.argv[1:]):
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print_report(result)
    return 0 if result["requests_per_minute"] <= BUDGET_PER_MINUTE else 1


if __name__ == "__main__":
    sys.exit(main())
