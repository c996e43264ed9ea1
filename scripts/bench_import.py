"""Median wall time of Python one-liners in fresh interpreters (cold start).

Runs are interleaved (A, B, A, B, ...) so machine noise hits both alike;
compare the ratio, not the absolute numbers.

By default the statements run in this checkout. With `--package ZIP` (the
deployment.zip of scripts/package) they run in it, unpacked, as Lambda runs
it: only the zip and the standard library on the path (-I -S) and no
bytecode written (-B: Lambda's code directory is read-only).

Usage: .venv/bin/python -m scripts.bench_import [--runs N] [--package ZIP] ["stmt" ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATEMENTS = ["import app", "import boto3, chalice", "pass"]


def checkout_command(statement: str) -> list[str]:
    return [sys.executable, "-c", statement]


def package_command(code_dir: Path, statement: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-B", "-c", f"import sys; sys.path.insert(0, {str(code_dir)!r}); {statement}"]


def time_once(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True)
    return time.perf_counter() - started


def medians(statements: list[str], runs: int, command_for, cwd: Path) -> dict[str, float]:
    samples: dict[str, list[float]] = {statement: [] for statement in statements}
    for statement in statements:
        time_once(command_for(statement), cwd)  # warm the file cache once
    for _ in range(runs):
        for statement in statements:
            samples[statement].append(time_once(command_for(statement), cwd))
    return {statement: statistics.median(values) for statement, values in samples.items()}


def report(results: dict[str, float], runs: int) -> None:
    statements = list(results)
    baseline = results[statements[1]] if len(statements) > 1 else None
    for statement, median in results.items():
        ratio = f"  ({median / baseline:.2f}x the second)" if baseline else ""
        print(f"{median * 1000:8.1f} ms median of {runs}  python -c {statement!r}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--package", type=Path, help="a deployment.zip to unpack and run in")
    parser.add_argument("statements", nargs="*", default=DEFAULT_STATEMENTS)
    args = parser.parse_args()
    if args.package is None:
        report(medians(args.statements, args.runs, checkout_command, ROOT), args.runs)
        return
    with tempfile.TemporaryDirectory() as unpacked:
        code_dir = Path(unpacked)
        with zipfile.ZipFile(args.package) as package:
            package.extractall(code_dir)
        results = medians(args.statements, args.runs, lambda statement: package_command(code_dir, statement), code_dir)
        report(results, args.runs)


if __name__ == "__main__":
    main()
