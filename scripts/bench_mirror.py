"""The mirror's lag on the local stack, as a user runs it.

Starts `./scripts/run` (its fake primary, empty, with the mirror on and the
default schedule), puts N posts by 100 authors on the primary's change feed,
and measures:
- the fill: from the posts being on the feed to `/status` saying the mirror
  holds all of them and has reached the feed's end;
- the steady lag: from one more post being written on the primary to its
  reading back from Lifeboat (GET /posts/{id} of its mirrored id is not
  known to a client, so the author's page is polled), over several samples,
  quoting the median;
- `/status`'s own `mirror.lag_seconds` at the end.
Usage: .venv/bin/python -m scripts.bench_mirror [--posts 10000] [--samples 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

from devtools.stack_process import RunningStack, start, wait_for

AUTHORS = 100
CHUNK = 2_000
TEXT = "A typical post of about a hundred characters, mirrored from the primary while it was still up."


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def post(url: str, document: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def add_accounts(stack: RunningStack) -> None:
    accounts = [
        {
            "type": "account",
            "username": f"author{n}",
            "display_name": f"Author {n}",
            "created_at": iso(time.time()),
            "suspended": False,
        }
        for n in range(AUTHORS)
    ]
    post(f"{stack.primary_url}/control/changes", {"changes": accounts})


def add_posts(stack: RunningStack, count: int) -> None:
    start_at = time.time() - count  # one a second, ending now
    for first in range(0, count, CHUNK):
        changes = [
            {
                "type": "post",
                "id": f"9{n:09d}",
                "author": f"author{n % AUTHORS}",
                "text": TEXT,
                "created_at": iso(start_at + n),
                "in_reply_to": None,
                "deleted": False,
            }
            for n in range(first, min(first + CHUNK, count))
        ]
        post(f"{stack.primary_url}/control/changes", {"changes": changes})


def mirrored(stack: RunningStack, posts: int) -> bool:
    mirror = get(f"{stack.base_url}/status")["mirror"]
    if mirror["malformed"]:
        raise RuntimeError(f"the mirror refused {mirror['malformed']} changes: {mirror}")
    return mirror["posts"] >= posts and mirror["lag_seconds"] is not None


def one_lag(stack: RunningStack, sample: int) -> float:
    text = f"lag sample {sample} {time.time()}"
    written = time.monotonic()
    post(f"{stack.primary_url}/control/posts", {"author": "author0", "text": text})
    page = f"{stack.base_url}/users/author0/posts?limit=5"
    wait_for(lambda: any(p["text"] == text for p in get(page)["posts"]), timeout=120, interval=0.05)
    return time.monotonic() - written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    stack = start({"MIRROR_ENABLED": "true", "SCHEDULE_SECONDS": "5"})
    try:
        add_accounts(stack)
        began = time.monotonic()
        add_posts(stack, args.posts)
        wait_for(lambda: mirrored(stack, args.posts), timeout=1800, interval=0.5)
        fill = time.monotonic() - began
        rate = args.posts / fill
        print(f"fill: {args.posts} posts by {AUTHORS} authors mirrored in {fill:.1f} s ({rate:.0f} posts/s)")
        lags = [one_lag(stack, sample) for sample in range(args.samples)]
        print(f"steady lag (post on the primary to readable here), {args.samples} samples: "
              f"median {statistics.median(lags):.2f} s, min {min(lags):.2f} s, max {max(lags):.2f} s "
              f"(schedule every 5 s)")  # fmt: skip
        print(f"/status mirror: {get(f'{stack.base_url}/status')['mirror']}")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
