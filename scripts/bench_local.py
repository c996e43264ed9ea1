"""Benchmark the local stack as a user runs it: `./scripts/run`, driven over
HTTP by 8 clients while its table grows to 100,000 posts.

The stack runs with its default settings, in the situation it exists for:
the primary is down (the fake primary is told so before anything is
posted), so every post stays in the table and the scheduled jobs run as they
would during an outage. Each client keeps one connection open; the 64 users
take turns. Printed: posts/s and p50/p99 latency of the first and last 1,000
posts and of each 10,000, with the resident memory of the stack's whole
process tree and the machine's load average (the CPU is shared, so it says
how noisy a row is), then a PASS/FAIL line per target:

- throughput of the last 1,000 posts at least 0.8 x that of the first 1,000;
- p99 latency under 500 ms in every window;
- peak resident memory of the stack's process tree under 1 GiB;
- no error (any answer but 201, or no answer).

Exit status 1 if a target fails. Linux only (memory is read from /proc).
Usage: .venv/bin/python -m scripts.bench_local [--posts N] [--clients N]
       [--users N] [--every N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from devtools.local_stack import DEFAULT_SCHEDULE_SECONDS
from devtools.stack_process import RunningStack, start

# The targets of issue 9.
THROUGHPUT_RATIO = 0.8
P99_LIMIT_MS = 500
RSS_LIMIT_BYTES = 1 << 30
EDGE_WINDOW = 1_000  # the first and last posts whose throughput is compared
REQUEST_TIMEOUT_SECONDS = 30

# What the bench changes from a user's `./scripts/run`, and why.
STACK_OVERRIDES = {
    # 8 clients make each of 64 users post several times a second; the limit
    # stays on (it is checked in the create transaction), but far above that.
    "POSTS_PER_MINUTE": "1000000",
    # stack_process.launch() runs the jobs every second for the tests;
    # the bench keeps ./scripts/run's own schedule.
    "SCHEDULE_SECONDS": str(DEFAULT_SCHEDULE_SECONDS),
}


# -- memory of the stack's process tree ----------------------------------------------


def _status_field(pid: int, name: str) -> int:
    """A `kB` field of /proc/<pid>/status, in bytes (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ")"
        children.setdefault(parent, []).append(int(entry.name))
    tree, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier.extend(children.get(pid, []))
    return tree


def tree_rss(root: int) -> int:
    return sum(_status_field(pid, "VmRSS") for pid in process_tree(root))


def tree_peak_rss(root: int) -> int:
    """The sum of each process's own peak (VmHWM): at least the tree's peak."""
    return sum(_status_field(pid, "VmHWM") for pid in process_tree(root))


# -- clients ------------------------------------------------------------------------------


@dataclass
class Outcome:
    latency: float
    done_at: float
    error: str | None


@dataclass
class Recorder:
    """Outcomes in completion order, and the stack's memory at each `every`."""

    root_pid: int
    every: int
    outcomes: list[Outcome] = field(default_factory=list)
    rss_at: dict[int, int] = field(default_factory=dict)
    load_at: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)
            done = len(self.outcomes)
        if done % self.every == 0 or done == EDGE_WINDOW:
            self.rss_at[done] = tree_rss(self.root_pid)
            self.load_at[done] = os.getloadavg()[0]
            print(f"... {done:,} posts, RSS {self.rss_at[done] / 2**20:.0f} MiB", file=sys.stderr, flush=True)


class Client:
    """One keep-alive connection to the API, reopened after any failure."""

    def __init__(self, base_url: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self._host, self._port = parsed.hostname, parsed.port
        self._connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: dict, token: str | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=REQUEST_TIMEOUT_SECONDS)
        headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._connection.request("POST", path, json.dumps(body), headers)
            response = self._connection.getresponse()
            return response.status, response.read()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def create_users(stack: RunningStack, count: int) -> list[str]:
    client = Client(stack.base_url)
    tokens = []
    for n in range(count):
        status, body = client.post("/admin/users", {"username": f"bench{n}"}, stack.admin_token)
        if status != 201:
            raise RuntimeError(f"creating user bench{n}: {status} {body[:200]!r}")
        tokens.append(json.loads(body)["token"])
    client.close()
    return tokens


def take_primary_down(stack: RunningStack) -> None:
    """The outage Lifeboat is for: its health checks fail, nothing is replayed."""
    status, body = Client(stack.primary_url).post("/control", {"down": True})
    if status != 200:
        raise RuntimeError(f"the fake primary refused to go down: {status} {body[:200]!r}")


def turns(count: int):
    """A callable that hands 0..count-1 out once each, to any number of
    threads, then None."""
    numbers, lock = iter(range(count)), threading.Lock()

    def next_number() -> int | None:
        with lock:
            return next(numbers, None)

    return next_number


def drive(stack: RunningStack, tokens: list[str], posts: int, clients: int, recorder: Recorder) -> None:
    """`clients` threads post `posts` posts, the users taking turns."""
    next_number = turns(posts)

    def run_client() -> None:
        client = Client(stack.base_url)
        while (n := next_number()) is not None:
            body = {"text": f"Post {n} from the bench: the primary is down, the lifeboat holds."}
            started = time.perf_counter()
            try:
                status, answer = client.post("/posts", body, tokens[n % len(tokens)])
                error = None if status == 201 else f"{status} {answer[:120]!r}"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            finished = time.perf_counter()
            recorder.record(Outcome(finished - started, finished, error))
        client.close()

    run_in_threads(run_client, clients, "client")


# -- report -------------------------------------------------------------------------------


@dataclass
class Window:
    label: str
    first: int  # 1-based, inclusive
    last: int
    posts_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    rss: int | None
    load: float | None


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def window(recorder: Recorder, started: float, label: str, first: int, last: int) -> Window:
    outcomes = recorder.outcomes[first - 1 : last]
    began = recorder.outcomes[first - 2].done_at if first > 1 else started
    latencies = sorted(outcome.latency for outcome in outcomes)
    return Window(
        label,
        first,
        last,
        len(outcomes) / (outcomes[-1].done_at - began),
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.99) * 1000,
        latencies[-1] * 1000,
        sum(outcome.error is not None for outcome in outcomes),
        recorder.rss_at.get(last),
        recorder.load_at.get(last),
    )


def windows(recorder: Recorder, started: float) -> tuple[Window, Window, list[Window]]:
    total, every = len(recorder.outcomes), recorder.every
    edge = min(EDGE_WINDOW, total)
    first = window(recorder, started, f"first {edge:,}", 1, edge)
    last = window(recorder, started, f"last {edge:,}", total - edge + 1, total)
    steps = [
        window(recorder, started, f"to {end:,}", begin, end)
        for begin, end in ((b, min(b + every - 1, total)) for b in range(1, total + 1, every))
    ]
    return first, last, steps


def print_table(rows: list[Window]) -> None:
    columns = ("posts/s", 8), ("p50 ms", 7), ("p99 ms", 7), ("max ms", 7), ("errors", 6), ("RSS MiB", 8), ("load", 5)
    print(f"{'posts':>16} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for row in rows:
        rss = f"{row.rss / 2**20:8.0f}" if row.rss is not None else f"{'':>8}"
        load = f"{row.load:5.1f}" if row.load is not None else f"{'':>5}"
        print(
            f"{row.label:>16} {row.posts_per_second:8.1f} {row.p50_ms:7.0f} {row.p99_ms:7.0f} {row.max_ms:7.0f}"
            f" {row.errors:6d} {rss} {load}"
        )


def verdicts(first: Window, last: Window, steps: list[Window], peak_rss: int, errors: list[str]) -> list[tuple]:
    worst = max([first, last, *steps], key=lambda row: row.p99_ms)
    ratio = last.posts_per_second / first.posts_per_second
    return [
        (
            ratio >= THROUGHPUT_RATIO,
            f"throughput: {last.label} {last.posts_per_second:.1f} posts/s = {ratio:.2f} x {first.label} "
            f"{first.posts_per_second:.1f} (target >= {THROUGHPUT_RATIO})",
        ),
        (
            worst.p99_ms < P99_LIMIT_MS,
            f"p99: worst window ({worst.label}) {worst.p99_ms:.0f} ms (target < {P99_LIMIT_MS} ms)",
        ),
        (
            peak_rss < RSS_LIMIT_BYTES,
            f"memory: peak RSS of the stack's process tree {peak_rss / 2**20:.0f} MiB (target < 1024 MiB)",
        ),
        (not errors, f"errors: {len(errors)} (target 0)" + (f"; first: {errors[0]}" if errors else "")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--every", type=int, default=10_000, help="posts per row of the table")
    args = parser.parse_args(argv)

    stack = start(STACK_OVERRIDES)
    try:
        take_primary_down(stack)
        tokens = create_users(stack, args.users)
        recorder = Recorder(stack.process.pid, args.every)
        print(
            f"{args.clients} clients post {args.posts:,} posts as {args.users} users to {stack.base_url}"
            f" (./scripts/run, primary down, {', '.join(f'{k}={v}' for k, v in STACK_OVERRIDES.items())})",
            flush=True,
        )
        started = time.perf_counter()
        drive(stack, tokens, args.posts, args.clients, recorder)
        elapsed = time.perf_counter() - started
        done = len(recorder.outcomes)
        if done not in recorder.rss_at:  # a last row shorter than --every
            recorder.rss_at[done], recorder.load_at[done] = tree_rss(stack.process.pid), os.getloadavg()[0]
        peak_rss = tree_peak_rss(stack.process.pid)
    finally:
        code = stack.stop()
    if code != 0:
        print(f"./scripts/run exited with {code}:\n" + "".join(stack.output[-40:]), file=sys.stderr)

    first, last, steps = windows(recorder, started)
    print(f"{len(recorder.outcomes):,} posts in {elapsed:.0f} s ({len(recorder.outcomes) / elapsed:.1f} posts/s)")
    print_table([first, *steps, last])
    errors = [outcome.error for outcome in recorder.outcomes if outcome.error is not None]
    results = verdicts(first, last, steps, peak_rss, errors)
    for passed, line in results:
        print(("PASS " if passed else "FAIL ") + line)
    return 0 if all(passed for passed, _ in results) and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())


def run_in_threads(target, count: int, name: str) -> None:
    """`target` on `count` threads at once, until every one has returned."""
    threads = [threading.Thread(target=target, name=f"{name}{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
