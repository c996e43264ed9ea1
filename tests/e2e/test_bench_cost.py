"""scripts/bench_cost.py on a small count: it runs the real stack against a
counting proxy and reports the cost of what it saw."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devtools.stack_process import ROOT

pytestmark = pytest.mark.e2e

WINDOW_FIELDS = {"seconds", "aws_requests", "by_operation", "write_units", "read_units", "s3_requests"}
COSTS = {"api_gateway", "lambda", "dynamodb", "s3", "total"}


def test_the_cost_bench_reports_every_post_and_its_write_units():
    run = subprocess.run(
        [sys.executable, "scripts/bench_cost.py", "--users", "3", "--posts", "15", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)

    assert (result["posts"], result["accepted"]) == (15, 15)
    assert result["assumptions"]["lambda_ms_per_request"] == 50
    for label in ("write", "idle"):
        window = result[label]
        assert set(window) >= WINDOW_FIELDS
        assert set(window["cost_per_million_posts_usd"]) == COSTS
    write = result["write"]
    assert write["write_units"] > 0
    assert {"dynamodb:TransactWriteItems", "dynamodb:PutItem"} & set(write["by_operation"])
    # Every post went through API Gateway: $3.50 per million at least.
    assert write["cost_per_million_posts_usd"]["api_gateway"] == pytest.approx(3.50)
    assert write["cost_per_million_posts_usd"]["total"] > write["cost_per_million_posts_usd"]["api_gateway"]
    # The idle window sends no API requests of its own.
    assert result["idle"]["cost_per_million_posts_usd"]["api_gateway"] == 0
