"""scripts/bench_cost.py end to end on a small count: moto, the counting
proxy and ./scripts/run as a real process, its --json output checked for
its shape and for bounds that a proxy or an estimator losing requests
would break."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devtools.stack_process import ROOT

POSTS = 6
ARGS = ["--users", "2", "--posts", str(POSTS), "--rate", "6", "--keyed-every", "2", "--schedule-seconds", "1"]


def test_bench_cost_counts_a_small_run_on_the_wire():
    # Given the local stack behind the counting proxy, with a short schedule and settle time,
    # when the bench posts 6 posts (3 with an Idempotency-Key),
    command = [sys.executable, "-m", "scripts.bench_cost", *ARGS, "--set", "ARCHIVE_SETTLE_SECONDS=1", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)

    # then every post was accepted and counted per accepted post in both windows,
    run, rows = result["run"], result["per_accepted_post"]
    assert run["accepted"] == POSTS and run["keyed"] == 3
    assert run["settings"]["WRITE_SHARDS"] == "16"  # the prod stage's, not the local one's 4
    assert set(rows) == {"idle", "write", "write_minus_idle"}
    write, idle = rows["write"], rows["idle"]
    for row in (write, idle):
        assert sum(row["aws_requests_by_operation"].values()) == pytest.approx(row["aws_requests"])
    # each post is stored at least once: a write unit or more each;
    assert write["dynamodb_write_units"] >= 1
    assert any(name.startswith("dynamodb:") for name in write["aws_requests_by_operation"])
    # the API's requests are the posts, and only in the write window;
    assert write["cost_per_million_posts"]["api_gateway"] == pytest.approx(3.5)
    assert idle["cost_per_million_posts"]["api_gateway"] == 0
    assert write["lambda_invocations"] >= 1
    # S3 PUTs are the PutObject and CopyObject requests, whatever their keys;
    puts = sum(
        n
        for name, n in write["aws_requests_by_operation"].items()
        if name.startswith(("s3:PutObject", "s3:CopyObject"))
    )
    assert write["s3_puts"] == pytest.approx(puts)
    total = write["cost_per_million_posts"]["total"]
    assert total > 3.5 + 0.2 + write["dynamodb_write_units"] * 0.625 - 1e-9
    # and the prices carry their date.
    assert result["prices"]["date"] == "2026-12-03"
    assert result["prices"]["region"] == "us-east-1"
