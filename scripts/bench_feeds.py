"""Measure what feeds cost: a 50-item render, and the import on a cold start.

Run from the repository root:  python scripts/bench_feeds.py
The import figures are wall times of fresh interpreters, so they include the
interpreter's own start-up; compare them with each other, not with zero. The
runs of the different statements are interleaved so that drift in machine load
hits them all alike. On its own, ``import chalicelib.feeds.render`` pays for stdlib
modules (email.utils, dataclasses, json) that the Lambda app has loaded anyway,
so the figure that matters for a cold start is the extra cost of feedgen on
top of ``import app``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chalicelib.core import ids  # noqa: E402
from chalicelib.core.models import Post  # noqa: E402
from chalicelib.feeds import render as feeds  # noqa: E402

SAMPLE_TEXT = "Lifeboat keeps posting while the main service is down <b>&</b> 😀 שלום\nsecond line " * 3


def sample_posts(count: int) -> list[Post]:
    start = ids.millis_from_iso("2026-11-23T20:38:42.179Z")
    return [
        Post(
            id=ids.smallest_ulid_at(start + n * 1000),
            author="alice",
            text=f"{n} {SAMPLE_TEXT}",
            created_at=ids.iso_from_millis(start + n * 1000),
        )
        for n in range(count)
    ]


def sample_channel(kind: feeds.FeedKind) -> feeds.FeedChannel:
    return feeds.FeedChannel(
        timeline=feeds.Timeline("alice"),
        title="alice on Lifeboat",
        description="Posts by alice",
        self_url=f"https://lifeboat.example/feeds/users/alice.{kind.value}",
        alternate_url="https://lifeboat.example/users/alice/posts",
        base_url="https://lifeboat.example",
    )


def median_render_ms(kind: feeds.FeedKind, runs: int) -> float:
    posts, channel = sample_posts(feeds.DEFAULT_FEED_ITEMS), sample_channel(kind)
    feeds.render_feed(kind, posts, channel)  # the first render pays feedgen's import
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        feeds.render_feed(kind, posts, channel)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


IMPORT_STATEMENTS = [
    "import chalicelib.feeds.render",
    "import feedgen.feed",
    "import app",
    "import app, chalicelib.feeds.render",
    "import app, chalicelib.feeds.render, feedgen.feed",
]


def median_import_ms(statements: list[str], runs: int) -> dict[str, float]:
    timings: dict[str, list[float]] = {statement: [] for statement in statements}
    for _ in range(runs):
        for statement in statements:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], cwd=REPO, check=True)
            timings[statement].append(time.perf_counter() - started)
    return {statement: statistics.median(values) * 1000 for statement, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-runs", type=int, default=30)
    parser.add_argument("--import-runs", type=int, default=15)
    args = parser.parse_args()

    items = feeds.DEFAULT_FEED_ITEMS
    for kind in feeds.FeedKind:
        ms = median_render_ms(kind, args.render_runs)
        print(f"render {kind.value:4} {items} items: median {ms:7.2f} ms over {args.render_runs} runs")
    medians = median_import_ms(IMPORT_STATEMENTS, args.import_runs)
    for statement, ms in medians.items():
        print(f"python -c {statement!r:46}: median {ms:7.2f} ms over {args.import_runs} runs")
    with_feedgen = medians["import app, chalicelib.feeds.render, feedgen.feed"]
    eager = with_feedgen - medians["import app, chalicelib.feeds.render"]
    print(f"an eager feedgen import would add {eager:.2f} ms to every cold start of the app")


if __name__ == "__main__":
    main()
