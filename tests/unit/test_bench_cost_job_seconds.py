"""bench_cost measures the maintenance job's run from the idle window's
bursts of calls; the stream's polling (every 0.2 s locally, by Lambda's
event source mapping on AWS) is no part of it."""

from __future__ import annotations

from devtools.counting_proxy import Call
from scripts.bench_cost import job_seconds


def test_the_job_is_its_bursts_and_the_stream_polling_in_between_is_left_out():
    polls = [Call(at / 10, "dynamodbstreams", "GetRecords", 200) for at in range(0, 1200)]  # 120 s, every 0.1 s
    runs = [Call(start + offset, "dynamodb", "GetItem", 200) for start in (0.0, 60.0) for offset in (0.0, 1.5, 3.0)]
    calls = sorted(polls + runs, key=lambda call: call.at)

    assert job_seconds(calls, (0.0, 120.0), 60.0) == 3.0
    # The same polls as calls of the job would join both runs into one burst.
    as_job = [Call(call.at, "dynamodb", call.operation, 200) for call in calls]
    assert job_seconds(as_job, (0.0, 120.0), 60.0) > 100
