"""What a post costs on AWS, counted on the wire.

A moto server runs in this process with a counting proxy in front of it
(devtools/counting_proxy.py); `./scripts/run` gets the proxy's address as
AWS_ENDPOINT_URL and the prod stage's settings from .chalice/config.json
(WRITE_SHARDS=16, ...) with the production schedule, rate(1 minute). The
primary is down before anything is posted, as in the outage Lifeboat exists
for: every post stays in the backlog, and the jobs run as they do then.

`--users` users are created, then two windows of the same length are
counted: an idle one (no traffic), then a write one, in which `--posts`
posts (every `--keyed-every`-th with an Idempotency-Key) are sent at
`--rate` posts/s by `--clients` concurrent clients. Each window lasts whole
schedule periods and reaches ARCHIVE_SETTLE_SECONDS plus one period past
the last post, so the write window holds the derived work (archive,
counters, whatever the code does) as well as the requests themselves.

Printed, per accepted post, for each window and for their difference: AWS
requests by operation; DynamoDB write and read units estimated from the
request shapes and the table's index projections (devtools/cost_model.py;
its approximations are printed too); S3 requests by billing class; and the
cost per million posts at dated list prices. Also S3 PUTs per post at the
rate run. --json prints the same as one JSON document.
Usage: .venv/bin/python -m scripts.bench_cost [--users 30] [--posts 300] [--rate 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from devtools import cost_model
from devtools.counting_proxy import Call, CountingProxy
from devtools.local_stack import stage_environment
from devtools.localaws import start_moto_server
from devtools.stack_process import RunningStack, start, wait_for
from scripts.bench_local import Client, create_users, percentile, run_in_threads, take_primary_down, turns

STAGE = "prod"
PRODUCTION_SCHEDULE_SECONDS = 60  # app.py: @app.schedule(Rate(1, unit=Rate.MINUTES))
STATUS_TIMEOUT_SECONDS = 10
STREAM_POLLING_SERVICE = "dynamodbstreams"  # devtools.counting_proxy.service_of
PER_MILLION = 1_000_000
COST_ITEMS = (
    "api_gateway",
    "lambda_requests",
    "lambda_duration",
    "dynamodb_writes",
    "dynamodb_reads",
    "s3",
    "kms",
    "total",
)


# -- the stack ----------------------------------------------------------------------------


def stack_environment(proxy_url: str, schedule_seconds: float, overrides: dict[str, str]) -> dict[str, str]:
    """The prod stage's settings, pointed at the proxy; logs kept to warnings
    (they cost nothing on the wire, and the pipe is read by one thread)."""
    return {
        **stage_environment(STAGE),
        "AWS_ENDPOINT_URL": proxy_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": cost_model.PRICE_REGION,
        "SEED_PRIMARY": "false",
        "SCHEDULE_SECONDS": str(schedule_seconds),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **overrides,
    }


def primary_state(stack: RunningStack) -> str | None:
    """What /status says of the primary."""
    with urllib.request.urlopen(f"{stack.base_url}/status", timeout=STATUS_TIMEOUT_SECONDS) as reply:
        return json.loads(reply.read()).get("primary")


# -- posting ------------------------------------------------------------------------------


@dataclass
class Posting:
    """The write window's client side: answers and latencies."""

    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int | None, latency: float, error: str | None) -> None:
        with self._lock:
            self.statuses[status] += 1
            if status == 201:
                self.latencies.append(latency)
            if error:
                self.errors.append(error)

    @property
    def accepted(self) -> int:
        return self.statuses[201]


def send_posts(stack: RunningStack, tokens: list[str], posts: int, rate: float, clients: int, keyed_every: int):
    """`posts` posts, the n-th due at n/rate seconds; the users take turns."""
    next_number, posting = turns(posts), Posting()
    began = time.monotonic()

    def run_client() -> None:
        client = Client(stack.base_url)
        while (n := next_number()) is not None:
            time.sleep(max(0.0, began + n / rate - time.monotonic()))  # pacing to the rate, not a wait
            headers = {"Idempotency-Key": f"bench-cost-{n}"} if keyed_every and n % keyed_every == 0 else None
            body = {"text": f"Post {n} from the cost bench: the primary is down and the lifeboat holds it."}
            sent = time.perf_counter()
            try:
                status, answer = client.post("/posts", body, tokens[n % len(tokens)], headers)
                posting.record(
                    status, time.perf_counter() - sent, None if status == 201 else f"{status} {answer[:120]!r}"
                )
            except Exception as exc:
                posting.record(None, time.perf_counter() - sent, f"{type(exc).__name__}: {exc}")
        client.close()

    run_in_threads(run_client, clients, "poster")
    return posting, time.monotonic() - began


def window_seconds(posts: int, rate: float, settle: float, schedule: float) -> float:
    """Whole schedule periods covering the posting, the archive's settle time
    and one more run after it."""
    return math.ceil((posts / rate + settle + schedule) / schedule) * schedule


# -- counting -----------------------------------------------------------------------------


@dataclass
class Tally:
    """What one window cost, in requests and units (totals, not per post)."""

    seconds: float
    requests: Counter = field(default_factory=Counter)
    writes: cost_model.Writes = field(default_factory=cost_model.Writes)
    read_units: float = 0.0
    s3: Counter = field(default_factory=Counter)
    s3_puts: int = 0  # PutObject and CopyObject, whatever the key
    stream_batches: int = 0  # GetRecords answers with records: one Lambda invocation each on AWS
    api_requests: int = 0
    job_runs: float = 0.0


def bypass_clients(moto_url: str):
    import boto3

    options = {
        "endpoint_url": moto_url,
        "region_name": cost_model.PRICE_REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return boto3.client("dynamodb", **options)


def table_shapes(dynamodb, calls: list[Call]) -> dict[str, cost_model.Table]:
    """Each table the run touched, from DescribeTable around the proxy."""
    names = {call.request["TableName"] for call in calls if call.request and "TableName" in call.request}
    for call in calls:
        for name in (call.request or {}).get("RequestItems", {}):
            names.add(name)
    existing = set(dynamodb.list_tables()["TableNames"])
    return {
        name: cost_model.Table.from_description(dynamodb.describe_table(TableName=name)["Table"])
        for name in sorted(names & existing)
    }


def count(calls: list[Call], ledger: cost_model.Ledger, windows: dict[str, tuple[float, float]], seconds: float):
    """Every call through the estimator in wire order (the ledger needs the
    writes before the windows too); tallied into the window it fell in."""
    tallies = {name: Tally(seconds) for name in windows}
    for call in calls:
        tally = next((tallies[name] for name, (a, b) in windows.items() if a <= call.at < b), None)
        writes, ru = cost_model.Writes(), 0.0
        if call.service == "dynamodb" and call.request is not None and call.status != 500:
            succeeded = call.status == 200
            writes = cost_model.write_units(ledger, call.operation, call.request, succeeded)
            ru = cost_model.read_units(ledger, call.operation, call.request, call.response if succeeded else None)
        if tally is None:
            continue
        tally.requests[call.name] += 1
        tally.writes += writes
        tally.read_units += ru
        if call.service == "s3":
            tally.s3[cost_model.s3_class(call.operation)] += 1
            tally.s3_puts += call.operation in ("PutObject", "CopyObject")
        if call.operation == "GetRecords" and (call.response or {}).get("Records"):
            tally.stream_batches += 1
    return tallies


def job_seconds(calls: list[Call], window: tuple[float, float], schedule: float) -> float:
    """The maintenance job's duration, measured as the mean span of the
    idle window's bursts of calls (a gap of half a period ends one). The
    stream's polling is left out: Lambda's event source mapping does it, in
    no function's time, and locally it never leaves a gap."""
    times = [
        call.at for call in calls if window[0] <= call.at < window[1] and call.service != STREAM_POLLING_SERVICE
    ]
    spans, first = [], None
    for before, after in zip([None, *times], [*times, None], strict=True):
        if first is None:
            first = after
        elif after is None or after - before > schedule / 2:
            spans.append(before - first)
            first = after
    return statistics.fmean(spans) if spans else 0.0


# -- cost ---------------------------------------------------------------------------------


def dollars(tally: Tally, lambda_gb: float, api_seconds: float, job_run_seconds: float) -> dict[str, float]:
    """The window's cost by item, in dollars."""
    prices = cost_model.PRICES
    invocations = tally.api_requests + tally.job_runs + tally.stream_batches
    gb_seconds = lambda_gb * (
        (tally.api_requests + tally.stream_batches) * api_seconds + tally.job_runs * job_run_seconds
    )
    kms = sum(n for name, n in tally.requests.items() if name.startswith("kms:"))
    return {
        "api_gateway": tally.api_requests * prices["api_gateway_request"],
        "lambda_requests": invocations * prices["lambda_request"],
        "lambda_duration": gb_seconds * prices["lambda_gb_second"],
        "dynamodb_writes": tally.writes.units * prices["dynamodb_write_unit"],
        "dynamodb_reads": tally.read_units * prices["dynamodb_read_unit"],
        "s3": tally.s3["put"] * prices["s3_put_class"] + tally.s3["get"] * prices["s3_get_class"],
        "kms": kms * prices["kms_request"],
    }


def per_post(tally: Tally, accepted: int, money: dict[str, float]) -> dict:
    return {
        "aws_requests": sum(tally.requests.values()) / accepted,
        "aws_requests_by_operation": {name: n / accepted for name, n in sorted(tally.requests.items())},
        "dynamodb_write_units": tally.writes.units / accepted,
        "dynamodb_write_units_transaction_indexes_doubled": (
            tally.writes.units + tally.writes.transactional_index_units
        )
        / accepted,
        "dynamodb_read_units": tally.read_units / accepted,
        "s3_requests": {kind: tally.s3[kind] / accepted for kind in ("put", "get", "free")},
        "s3_puts": tally.s3_puts / accepted,
        "lambda_invocations": (tally.api_requests + tally.job_runs + tally.stream_batches) / accepted,
        "cost_per_million_posts": {
            **{name: value / accepted * PER_MILLION for name, value in money.items()},
            "total": sum(money.values()) / accepted * PER_MILLION,
        },
    }


def difference(write: dict, idle: dict) -> dict:
    """write - idle, key by key (what the posts added to the idle cost)."""
    if isinstance(write, dict):
        return {key: difference(write.get(key, 0), idle.get(key, 0)) for key in sorted({*write, *idle})}
    return write - idle


# -- the report ---------------------------------------------------------------------------


def _row(label: str, idle, write, marginal, digits: int = 3) -> str:
    return f"  {label:<44} {idle:>10.{digits}f} {write:>10.{digits}f} {marginal:>10.{digits}f}"


def print_report(result: dict) -> None:
    run, rows = result["run"], result["per_accepted_post"]
    idle, write, marginal = rows["idle"], rows["write"], rows["write_minus_idle"]
    print(
        f"Cost bench: {run['users']} users, {run['posts']} posts ({run['keyed']} with an Idempotency-Key) at "
        f"{run['rate']:g} posts/s from {run['clients']} clients; ./scripts/run with the {STAGE} stage's settings "
        f"(WRITE_SHARDS={run['settings']['WRITE_SHARDS']}, SCHEDULE_SECONDS={run['settings']['SCHEDULE_SECONDS']}), "
        f"primary down"
    )
    print(
        f"accepted {run['accepted']} of {run['posts']} (answers {run['answers']}); posting took "
        f"{run['posting_seconds']:.1f} s; each window {run['window_seconds']:g} s; "
        f"POST /posts p50 {run['post_p50_ms']:.0f} ms, p99 {run['post_p99_ms']:.0f} ms locally"
    )
    print(f"\nPer accepted post ({run['accepted']} posts):  {'idle':>10} {'write':>10} {'write-idle':>10}")
    print(_row("AWS requests", idle["aws_requests"], write["aws_requests"], marginal["aws_requests"]))
    for name in marginal["aws_requests_by_operation"]:
        by = "aws_requests_by_operation"
        print(_row("  " + name, idle[by].get(name, 0), write[by].get(name, 0), marginal[by][name]))
    for key, label in (
        ("dynamodb_write_units", "DynamoDB write units (estimated)"),
        ("dynamodb_write_units_transaction_indexes_doubled", "  with a transaction's index writes doubled"),
        ("dynamodb_read_units", "DynamoDB read units (estimated)"),
    ):
        print(_row(label, idle[key], write[key], marginal[key]))
    for kind in ("put", "get", "free"):
        print(
            _row(
                f"S3 requests, {kind} class",
                idle["s3_requests"][kind],
                write["s3_requests"][kind],
                marginal["s3_requests"][kind],
            )
        )
    print(
        _row(
            "Lambda invocations",
            idle["lambda_invocations"],
            write["lambda_invocations"],
            marginal["lambda_invocations"],
        )
    )
    prices = result["prices"]
    print(
        f"\nCost per million posts, $ (prices as of {prices['date']}, {prices['region']}, on-demand list prices; "
        f"Lambda {run['lambda_memory_mb']} MB, {run['lambda_ms']:.0f} ms per API or stream invocation, "
        f"{run['job_ms']:.0f} ms per job run):"
    )
    for name in COST_ITEMS:
        cost = "cost_per_million_posts"
        print(_row(name, idle[cost][name], write[cost][name], marginal[cost][name], digits=2))
    print(
        f"\nS3 PUTs per post at {run['rate']:g} posts/s: {write['s3_puts']:.3f} "
        f"(write window; {marginal['s3_puts']:.3f} over idle)"
    )
    print("\nEstimates: " + " ".join(cost_model.APPROXIMATIONS))


# -- main ---------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--rate", type=float, default=6.0, help="posts per second")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keyed-every", type=int, default=4, help="every n-th post has an Idempotency-Key (0: none)")
    parser.add_argument("--schedule-seconds", type=float, default=PRODUCTION_SCHEDULE_SECONDS)
    parser.add_argument("--lambda-ms", type=float, help="billed ms per API invocation (default: the measured p50)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a stack setting to override")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = parser.parse_args(argv)
    args.overrides = dict(item.split("=", 1) for item in args.set)
    return args


def lambda_memory_mb() -> int:
    from devtools.local_stack import ROOT

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return int(config["stages"][STAGE].get("lambda_memory_size", 128))


def measure(args: argparse.Namespace) -> dict:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    moto, moto_url = start_moto_server()
    proxy = CountingProxy(moto_url).start()
    env = stack_environment(proxy.url, args.schedule_seconds, args.overrides)
    window = window_seconds(args.posts, args.rate, float(env["ARCHIVE_SETTLE_SECONDS"]), args.schedule_seconds)
    stack = start(env)
    try:
        take_primary_down(stack)
        tokens = create_users(stack, args.users)
        wait_for(lambda: primary_state(stack) == "down", timeout=4 * args.schedule_seconds + 30, interval=0.5)
        idle_start = time.monotonic()
        time.sleep(window)  # the idle window: nothing is sent
        write_start = time.monotonic()
        posting, posting_seconds = send_posts(stack, tokens, args.posts, args.rate, args.clients, args.keyed_every)
        time.sleep(max(0.0, write_start + window - time.monotonic()))  # the write window's drain
        write_end = time.monotonic()
    finally:
        code = stack.stop()
    if code != 0:
        print(f"./scripts/run exited with {code}:\n" + "".join(stack.output[-40:]), file=sys.stderr)
    try:
        calls = proxy.calls()
        windows = {"idle": (idle_start, write_start), "write": (write_start, write_end)}
        dynamodb = bypass_clients(moto_url)
        tables = table_shapes(dynamodb, calls)
        tallies = count(calls, cost_model.Ledger(tables), windows, window)
        job_run_seconds = job_seconds(calls, windows["idle"], args.schedule_seconds)
    finally:
        proxy.stop()
        moto.stop()
    return report(args, env, window, posting, posting_seconds, tallies, job_run_seconds, tables)


def report(args, env, window, posting: Posting, posting_seconds, tallies, job_run_seconds, tables) -> dict:
    if posting.accepted == 0:
        raise SystemExit(f"no post was accepted: {posting.statuses}; first error: {posting.errors[:1]}")
    latencies = sorted(posting.latencies)
    lambda_ms = args.lambda_ms if args.lambda_ms is not None else percentile(latencies, 0.5) * 1000
    runs = window / args.schedule_seconds
    tallies["idle"].job_runs = tallies["write"].job_runs = runs
    tallies["write"].api_requests = sum(posting.statuses.values())
    memory = lambda_memory_mb()
    rows = {
        name: per_post(tally, posting.accepted, dollars(tally, memory / 1024, lambda_ms / 1000, job_run_seconds))
        for name, tally in tallies.items()
    }
    rows["write_minus_idle"] = difference(rows["write"], rows["idle"])
    shown = {"WRITE_SHARDS", "SCHEDULE_SECONDS", "ARCHIVE_SETTLE_SECONDS", *args.overrides}
    settings = {name: env[name] for name in sorted(shown)}
    return {
        "run": {
            "users": args.users,
            "posts": args.posts,
            "keyed": len(range(0, args.posts, args.keyed_every)) if args.keyed_every else 0,
            "rate": args.rate,
            "clients": args.clients,
            "accepted": posting.accepted,
            "answers": {str(status): n for status, n in sorted(posting.statuses.items(), key=str)},
            "errors": posting.errors[:5],
            "posting_seconds": posting_seconds,
            "window_seconds": window,
            "post_p50_ms": percentile(latencies, 0.5) * 1000,
            "post_p99_ms": percentile(latencies, 0.99) * 1000,
            "lambda_memory_mb": memory,
            "lambda_ms": lambda_ms,
            "job_ms": job_run_seconds * 1000,
            "settings": settings,
            "indexes": {
                name: {index.name: index.projection for index in table.indexes} for name, table in tables.items()
            },
        },
        "prices": {"date": cost_model.PRICE_DATE, "region": cost_model.PRICE_REGION, **cost_model.PRICES},
        "per_accepted_post": rows,
        "approximations": list(cost_model.APPROXIMATIONS),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
