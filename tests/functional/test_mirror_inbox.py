"""The S3 inbox as the schedule wires it (moto): a stack with MIRROR_ENABLED
and no primary at all ingests a pushed export, whose users then sign in with
their primary tokens; and the inbox shares the mirror's time with a feed."""

from __future__ import annotations

import hashlib
import json

import pytest

from chalicelib import wiring
from chalicelib.aws import clients as aws
from chalicelib.maintenance import MIRROR_RESERVE_SECONDS, Maintenance
from chalicelib.mirror.inbox import InboxReport
from chalicelib.mirror.service import MirrorReport
from chalicelib.upstream.tokens import ensure_key
from tests.conftest import BUCKET

CREATED = "2026-11-01T00:00:00.000Z"
TOKEN = "token-the-primary-issued"


def jsonl(*documents) -> bytes:
    return "".join(json.dumps(document) + "\n" for document in documents).encode()


def account(name):
    return {"type": "account", "username": name, "display_name": name.title(), "created_at": CREATED}


def post(n):
    return {"type": "post", "id": f"b{n}", "author": "bob", "text": f"bob posted {n}", "created_at": CREATED,
            "in_reply_to": None, "deleted": False}  # fmt: skip


EXPORT = [
    account("alice"),
    account("bob"),
    {
        "type": "credential",
        "username": "alice",
        "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "scopes": "read write follow",
        "revoked": False,
    },
    {"type": "follow", "follower": "alice", "followee": "bob", "active": True},
    *[post(n) for n in range(3)],
]


@pytest.fixture
def inbox_only(monkeypatch, api):
    monkeypatch.setenv("MIRROR_ENABLED", "true")
    monkeypatch.delenv("UPSTREAM_URL", raising=False)
    wiring.reset()
    ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
    return api


def keys(prefix: str) -> list[str]:
    listed = aws.new_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_stack_with_no_primary_ingests_the_inbox_and_its_users_sign_in(inbox_only):
    api = inbox_only
    assert wiring.mirror() is None  # no feed: the inbox alone
    aws.new_client("s3").put_object(Bucket=BUCKET, Key="mirror/inbox/export.jsonl", Body=jsonl(*EXPORT))

    report = wiring.maintenance().run(lambda: 60.0)
    assert report.recovery["primary"] == "unconfigured"
    assert (report.inbox["objects"], report.inbox["accounts"], report.inbox["posts"]) == (1, 2, 3)
    assert (keys("mirror/inbox/"), keys("mirror/done/")) == ([], ["mirror/done/export.jsonl"])

    home = api.get("/api/v1/timelines/home", token=TOKEN)
    assert home.status == 200
    assert sorted(status["content"] for status in home.body) == [f"<p>bob posted {n}</p>" for n in range(3)]
    assert api.post("/posts", {"text": "first post here"}, token=TOKEN).status == 201
    mirror = api.get("/status").body["mirror"]
    assert (mirror["accounts"], mirror["posts"], mirror["cursor_at"]) == (2, 3, None)


def test_without_mirror_enabled_there_is_no_inbox(monkeypatch, moto):
    monkeypatch.delenv("MIRROR_ENABLED", raising=False)
    wiring.reset()
    assert wiring.mirror_inbox() is None


class Recorded:
    """An inbox or a feed mirror that notes the time it was given."""

    def __init__(self, report) -> None:
        self._report = report
        self.time_left: list[float] = []
        self.outages = 0

    def run(self, time_left, *_):
        self.time_left.append(time_left())
        return self._report

    def note_outage(self):
        self.outages += 1


def job(inbox, mirror=None, primary="up") -> Maintenance:
    class Recovery:
        def run(self, *_, **__):
            return {"primary": primary}

    job = Maintenance(None, None, None, None, wiring.settings(), Recovery(), mirror=mirror, inbox=inbox)
    job.archive_new_posts = lambda report: None
    job.fold_spool = lambda report: None
    return job


def test_the_inbox_has_half_the_mirrors_time_when_the_feed_runs_and_all_of_it_otherwise(inbox_only):
    inbox, feed = Recorded(InboxReport()), Recorded(MirrorReport())
    job(inbox, feed).run(lambda: 50.0)
    assert inbox.time_left == [(50.0 - MIRROR_RESERVE_SECONDS) / 2] and feed.time_left == [40.0]
    down_inbox, down_feed = Recorded(InboxReport()), Recorded(MirrorReport())
    job(down_inbox, down_feed, primary="down").run(lambda: 50.0)
    assert (down_inbox.time_left, down_feed.time_left, down_feed.outages) == ([40.0], [], 1)


def test_an_inbox_without_a_feed_marks_the_outage_itself(inbox_only):
    inbox = Recorded(InboxReport())
    job(inbox, primary="down").run(lambda: 50.0)
    job(inbox, primary="unconfigured").run(lambda: 50.0)
    assert (inbox.outages, inbox.time_left) == (1, [40.0, 40.0])


def test_a_failing_inbox_does_not_stop_the_feed_behind_it(inbox_only):
    class Denied(Recorded):
        def run(self, time_left, *_):
            raise PermissionError("AccessDenied on mirror/inbox/")

    feed = Recorded(MirrorReport())
    report = job(Denied(InboxReport()), feed).run(lambda: 50.0)
    assert report.inbox == {"stop": "error", "error": "PermissionError"}
    assert feed.time_left == [40.0]
