"""Median wall time of Python one-liners in fresh interpreters (cold start).

Runs are interleaved (A, B, A, B, ...) so machine noise hits both alike;
compare the ratio, not the absolute numbers.
Usage: .venv/bin/python -m scripts.bench_import [--runs N] ["stmt" ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATEMENTS = ["import app", "import boto3, chalice", "pass"]


def time_once(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("statements", nargs="*", default=DEFAULT_STATEMENTS)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {statement: [] for statement in args.statements}
    for statement in args.statements:
        time_once(statement)  # warm the file cache once
    for _ in range(args.runs):
        for statement in args.statements:
            samples[statement].append(time_once(statement))
    baseline = statistics.median(samples[args.statements[1]]) if len(args.statements) > 1 else None
    for statement, values in samples.items():
        median = statistics.median(values)
        ratio = f"  ({median / baseline:.2f}x the second)" if baseline else ""
        print(f"{median * 1000:8.1f} ms median of {args.runs}  python -c {statement!r}{ratio}")


if __name__ == "__main__":
    main()
