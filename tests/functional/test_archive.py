"""The S3 archive: every post exactly once, however often the job runs."""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib import wiring
from chalicelib.maintenance import Maintenance
from chalicelib.posts.archive import Archive, Spool
from scripts import export_archive
from tests.conftest import BUCKET


def archived_records() -> list[dict]:
    s3 = boto3.client("s3")
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="archive/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode("utf-8")
            records += [json.loads(line) for line in body.splitlines()]
    return records


def maintenance(settle_seconds: int = 0) -> Maintenance:
    """The job as the schedule builds it, with the clock past the settle time."""
    settings = dataclasses.replace(wiring.settings(), archive_settle_seconds=settle_seconds)
    s3 = wiring.s3()
    later = time.time() + 1
    checkpoints = wiring.archive_checkpoints()
    return Maintenance(
        wiring.post_store(), Spool(s3, BUCKET), Archive(s3, BUCKET), checkpoints, settings, clock=lambda: later
    )


@pytest.fixture
def tokens(api):
    return {name: api.new_user(name) for name in ("alice", "bob", "carol")}


def write(api, tokens, count):
    names = list(tokens)
    return [
        api.post(
            "/posts", {"text": f"post {i} <&> \u05e9\u05dc\u05d5\u05dd \U0001f6df"}, token=tokens[names[i % 3]]
        ).body
        for i in range(count)
    ]


def test_every_post_is_archived_exactly_once_across_repeated_runs(api, tokens):
    first_batch = write(api, tokens, 40)
    maintenance().run()
    maintenance().run()
    second_batch = write(api, tokens, 25)
    for _ in range(3):
        maintenance().run()

    records = archived_records()
    counts = Counter(record["id"] for record in records)
    assert set(counts) == {post["id"] for post in first_batch + second_batch}
    assert max(counts.values()) == 1


def test_archived_records_keep_what_the_author_wrote(api, tokens):
    post = write(api, tokens, 1)[0]
    maintenance().run()
    assert archived_records() == [{k: post[k] for k in ("id", "author", "text", "created_at", "in_reply_to")}]


def test_objects_are_json_lines_under_hour_partitions(api, tokens):
    post = write(api, tokens, 1)[0]
    maintenance().run()
    keys = [obj["Key"] for obj in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="archive/")["Contents"]]
    created = post["created_at"]
    hour = f"archive/{created[:4]}/{created[5:7]}/{created[8:10]}/{created[11:13]}/"
    assert len(keys) == 1 and keys[0].startswith(hour) and keys[0].endswith(".jsonl")


def test_posts_younger_than_the_settle_time_wait_for_the_next_run(api, tokens):
    write(api, tokens, 3)
    report = maintenance(settle_seconds=3600).run()
    assert report.archived == 0
    assert archived_records() == []


def test_a_run_that_dies_before_its_checkpoint_is_repeated_without_duplicates(api, tokens, outage):
    posts = write(api, tokens, 12)
    # Given a run that wrote its archive objects but could not move the checkpoint,
    outage.throttled(wiring.dynamodb(), "UpdateItem")
    with pytest.raises(Exception, match="advance archive checkpoint"):
        maintenance().run()
    outage.end()
    assert archived_records()

    # when the next run repeats the work,
    maintenance().run()

    # then each post is still archived once.
    counts = Counter(record["id"] for record in archived_records())
    assert set(counts) == {post["id"] for post in posts}
    assert max(counts.values()) == 1


def test_spooled_posts_are_archived_once_by_the_fold(api, tokens, outage):
    write(api, tokens, 2)
    outage.throttled(wiring.dynamodb(), "PutItem")
    spooled = api.post("/posts", {"text": "spooled"}, token=tokens["bob"]).body
    outage.end()

    maintenance().run()
    maintenance().run()

    counts = Counter(record["id"] for record in archived_records())
    assert counts[spooled["id"]] == 1
    assert len(counts) == 3 and max(counts.values()) == 1


def test_a_post_deleted_before_archiving_is_not_archived(api, tokens):
    kept, gone = write(api, tokens, 2)
    api.delete(f"/posts/{gone['id']}", token=tokens["bob"])
    maintenance().run()
    assert [record["id"] for record in archived_records()] == [kept["id"]]


def table_posts(api) -> list[dict]:
    """Every live post, read back through the public timeline."""
    found, cursor = [], None
    while True:
        body = api.get("/timeline/public?limit=100" + (f"&cursor={cursor}" if cursor else "")).body
        found += body["posts"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def test_three_hundred_posts_over_repeated_runs_archive_exactly_the_table(api, tokens, monkeypatch):
    monkeypatch.setenv("POSTS_PER_MINUTE", "0")  # three authors writing 100 posts each within a minute
    wiring.reset()
    # Given posts arriving between runs, some runs finding nothing new,
    for batch in (120, 0, 97, 83):
        write(api, tokens, batch)
        maintenance().run()
        maintenance().run()

    # then the archive holds each post of the table once, as it was written.
    fields = ("id", "author", "text", "created_at", "in_reply_to")
    expected = sorted(({k: post[k] for k in fields} for post in table_posts(api)), key=lambda r: r["id"])
    assert len(expected) == 300
    assert sorted(archived_records(), key=lambda record: record["id"]) == expected


def test_the_export_script_writes_the_archive_as_sorted_json_lines(api, tokens, tmp_path, monkeypatch):
    posts = write(api, tokens, 30)
    maintenance().run()
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    out = tmp_path / "export.jsonl"
    since = datetime.now(UTC) - timedelta(hours=1)
    until = datetime.now(UTC) + timedelta(hours=1)

    assert export_archive.main(["--since", since.isoformat(), "--until", until.isoformat(), "--out", str(out)]) == 0

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == sorted(post["id"] for post in posts)
    assert lines == sorted(archived_records(), key=lambda record: record["id"])


def test_the_export_script_leaves_out_posts_outside_the_window(api, tokens, tmp_path, monkeypatch):
    write(api, tokens, 3)
    maintenance().run()
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    out = tmp_path / "export.jsonl"
    export_archive.main(["--since", "2020-01-01T00:00:00Z", "--until", "2020-01-01T05:00:00Z", "--out", str(out)])
    assert out.read_text(encoding="utf-8") == ""
