"""./scripts/run end to end: a real process, real HTTP on loopback, moto's
real server underneath, concurrent clients, and a clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devtools.stack_process import launch, process_group_is_gone
from tests.concurrency import run_at_once
from tests.e2e.conftest import PRIMARY_TOKEN
from tests.e2e.stack import http, start_stack, wait_for

pytestmark = pytest.mark.e2e
ADMIN = "e2e-admin-token"


@pytest.fixture(scope="module")
def stack():
    running = start_stack({"ADMIN_TOKEN": ADMIN, "MAX_POST_CHARS": "280"})
    yield running
    running.stop()


def test_readme_walkthrough_works(stack):
    assert stack.admin_token == ADMIN
    token = stack.new_user("walker")

    created = stack.call("POST", "/posts", {"text": "Hello from the lifeboat"}, token=token)
    assert created.status == 201
    post = created.body

    assert stack.call("GET", f"/posts/{post['id']}").body == post
    assert post["id"] in [p["id"] for p in stack.call("GET", "/users/walker/posts").body["posts"]]
    # The public timeline and the backlog count have it once the stream has
    # reached the consumer (well under a second).
    wait_for(lambda: post["id"] in [p["id"] for p in stack.call("GET", "/timeline/public").body["posts"]], timeout=10)
    wait_for(lambda: stack.call("GET", "/status").body["backlog"] >= 1, timeout=10)
    assert stack.call("GET", "/status").body["mode"] == "fallback"


def test_settings_from_the_environment_override_the_stage(stack):
    token = stack.new_user("shorty")
    assert stack.call("POST", "/posts", {"text": "x" * 280}, token=token).status == 201
    reply = stack.call("POST", "/posts", {"text": "x" * 281}, token=token)
    assert (reply.status, reply.body["error"]) == (422, "text_too_long")


def test_errors_keep_their_json_shape_over_real_http(stack):
    token = stack.new_user("errs")
    reply = stack.call("POST", "/posts", {"text": "x"}, token=token, headers={"Content-Type": "text/plain"})
    assert (reply.status, reply.body["error"]) == (415, "unsupported_media_type")
    assert stack.call("POST", "/posts", {"text": "x"}).status == 401


def test_concurrent_clients_each_get_their_own_answer(stack):
    # Given 8 authors posting and reading at once (Chalice issue 759: a
    # shared current_request would mix up their requests),
    tokens = {f"conc{i}": stack.new_user(f"conc{i}") for i in range(8)}

    def author_session(name):
        sent = []
        for n in range(8):
            text = f"{name} says {n}"
            reply = stack.call("POST", "/posts", {"text": text}, token=tokens[name])
            assert reply.status == 201, reply.body
            assert (reply.body["author"], reply.body["text"]) == (name, text)
            sent.append(reply.body["id"])
            mine = stack.call("GET", f"/users/{name}/posts?limit=100").body["posts"]
            assert {p["author"] for p in mine} == {name}
        return name, sent

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(author_session, tokens))

    # then every post is stored once, under its own author, in order.
    for name, sent in results:
        listed = [p["id"] for p in stack.call("GET", f"/users/{name}/posts?limit=100").body["posts"]]
        assert listed == list(reversed(sent))


def test_a_burst_of_connections_is_queued_not_reset(stack):
    # 100 clients connect in the same instant: socketserver's default listen
    # backlog of 5 reset some of them; every one must be answered.
    def connect_and_ask() -> bytes:
        host, port = urllib.parse.urlsplit(stack.base_url).netloc.split(":")
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(b"GET /status HTTP/1.1\r\nHost: lifeboat\r\nConnection: close\r\n\r\n")
            return conn.recv(12)

    answers = run_at_once(connect_and_ask, 100)

    assert answers == [b"HTTP/1.1 200"] * 100


def test_one_idempotency_key_raced_over_http_makes_one_post(stack):
    token = stack.new_user("racer")

    def send(_):
        reply = stack.call("POST", "/posts", {"text": "once"}, token=token, headers={"Idempotency-Key": "http-race"})
        return reply.status, reply.body["id"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(send, range(12)))

    assert {status for status, _ in answers} == {201}
    assert len({post_id for _, post_id in answers}) == 1
    assert len(stack.call("GET", "/users/racer/posts").body["posts"]) == 1


def test_the_scheduled_job_archives_posts_to_s3(stack):
    token = stack.new_user("archivist")
    post = stack.call("POST", "/posts", {"text": "archive me"}, token=token).body
    s3 = stack.aws_client("s3")

    def archived_bodies():
        listing = s3.list_objects_v2(Bucket="lifeboat-local", Prefix="archive/").get("Contents", [])
        bodies = [s3.get_object(Bucket="lifeboat-local", Key=o["Key"])["Body"].read().decode() for o in listing]
        return post["id"] in "".join(bodies)

    wait_for(archived_bodies, timeout=30)  # fails the test if never archived


def test_sigterm_to_the_run_script_stops_everything():
    # A stack of its own, so stopping it does not disturb the others.
    running = start_stack()
    assert running.call("GET", "/status").status == 200
    started = time.monotonic()

    os.kill(running.process.pid, signal.SIGTERM)
    code = running.process.wait(timeout=10)

    assert code == 0
    assert time.monotonic() - started < 5
    # The whole process group is gone: no stray moto or server process.
    assert process_group_is_gone(running.process.pid)
    with pytest.raises(OSError):
        running.call("GET", "/status")


def test_a_stack_that_cannot_act_on_sigterm_is_still_stopped_within_5_seconds():
    # Given a stack whose Python process cannot run at all (frozen: no thread
    # of it gets to handle the signal, as when its threads are starved),
    running = start_stack()
    supervisor = running.process.pid
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    (stack,) = (int(pid) for pid in children)
    os.kill(stack, signal.SIGSTOP)
    started = time.monotonic()

    # when ./scripts/run gets a SIGTERM,
    os.kill(supervisor, signal.SIGTERM)
    code = running.process.wait(timeout=10)

    # then it ends the stack itself within 5 s, says so, and fails.
    assert time.monotonic() - started < 5
    assert code == 1
    assert process_group_is_gone(supervisor)
    wait_for(lambda: "did not stop in time" in "".join(running.output), timeout=5)  # fails if never said


def _run_until_it_exits(process: subprocess.Popen, timeout: float = 60) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return output


def test_a_stack_whose_api_does_not_answer_in_time_exits_non_zero():
    # Given a readiness wait too short for any API to answer,
    process = launch({"READY_TIMEOUT_SECONDS": "0"})

    output = _run_until_it_exits(process)

    # then the start counts as failed: a non-zero exit, the reason, no
    # "Ready" line, and nothing of it left running.
    assert process.returncode == 1, output
    assert "The API did not answer in time." in output
    assert "Ready:" not in output
    assert process_group_is_gone(process.pid)


def test_a_stack_that_cannot_listen_on_its_port_says_so_and_exits_non_zero():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = launch({"PORT": str(port)})

        output = _run_until_it_exits(process)

    assert process.returncode == 1, output
    assert f"The API cannot listen on 127.0.0.1:{port}" in output
    assert "Traceback" not in output
    assert process_group_is_gone(process.pid)


def _sends_in_flight(primary) -> int:
    stats = primary.stats()
    return stats["requests"] - stats["accepted"] - stats["idempotent_hits"]


def _post_state(dynamodb, post_id: str) -> str:
    key = {"PK": {"S": f"POST#{post_id}"}, "SK": {"S": "POST"}}
    return dynamodb.get_item(TableName="lifeboat-local", Key=key, ConsistentRead=True)["Item"]["state"]["S"]


def test_sigterm_mid_replay_stops_within_5_seconds_and_the_next_run_resends_with_the_same_key(primary):
    # Given a stack on a shared AWS endpoint, replaying 24 posts of 8 authors
    # into a primary that takes 8 s per request, with sends in flight,
    from devtools.localaws import start_moto_server

    shared, url = start_moto_server()
    env = {
        "AWS_ENDPOINT_URL": url,
        "UPSTREAM_URL": primary.url,
        "UPSTREAM_TOKEN": PRIMARY_TOKEN,
        "UPSTREAM_TIMEOUT_SECONDS": "30",
        "HEALTH_UP_AFTER": "1",
    }
    try:
        primary.configure(latency_ms=8000)
        first = start_stack(env)
        tokens = [first.new_user(f"slow{n}") for n in range(8)]
        posts = [first.call("POST", "/posts", {"text": f"post {n}"}, token=tokens[n % 8]).body["id"] for n in range(24)]
        wait_for(lambda: _sends_in_flight(primary) >= 1, timeout=30)

        # when it gets a SIGTERM,
        started = time.monotonic()
        os.kill(first.process.pid, signal.SIGTERM)
        assert first.process.wait(timeout=10) == 0

        # then everything stops within 5 s, though the sends were still waiting on the primary;
        assert time.monotonic() - started < 5
        assert process_group_is_gone(first.process.pid)
        # the posts it was sending stay claimed, and none is marked replayed that the primary lacks.
        dynamodb = first.aws_client("dynamodb")
        states = {post_id: _post_state(dynamodb, post_id) for post_id in posts}
        claimed = {post_id for post_id, state in states.items() if state == "sending"}
        assert claimed
        wait_for(lambda: _sends_in_flight(primary) == 0, timeout=30)  # the sends it left behind land
        landed = {p.id for p in primary.received()}
        assert {post_id for post_id, state in states.items() if state == "replayed"} <= landed

        # When the next run starts, once the stopped run's lease has expired
        # (deleted here rather than waited for),
        dynamodb.delete_item(TableName="lifeboat-local", Key={"PK": {"S": "LEASE#replay"}, "SK": {"S": "LEASE"}})
        primary.configure(latency_ms=0)
        second = start_stack(env)
        try:
            wait_for(lambda: second.call("GET", "/status").body["backlog"] == 0, timeout=60)
        finally:
            assert second.stop() == 0

        # then it resends the claimed posts with their keys, which the primary
        # recognises, and sends the rest: the primary has every post exactly once.
        assert sorted(p.id for p in primary.received()) == sorted(posts)
        assert primary.stats()["idempotent_hits"] == len(claimed & landed) >= 1
    finally:
        shared.stop()


def test_the_outage_walkthrough_plays_locally(stack):
    # Given the fake primary the stack started, marked down,
    primary = stack.primary_url
    assert http("POST", f"{primary}/control", {"down": True}).status == 200
    wait_for(lambda: stack.call("GET", "/status").body["primary"] == "down")
    token = stack.new_user("outage")
    posts = [stack.call("POST", "/posts", {"text": f"during the outage {n}"}, token=token).body for n in range(3)]
    assert stack.call("GET", "/status").body["mode"] == "fallback"
    # The backlog counts them once the stream has delivered them (well under a second).
    wait_for(lambda: stack.call("GET", "/status").body["backlog"] >= 3, timeout=10)

    # when it comes back,
    assert http("POST", f"{primary}/control", {"down": False}).status == 200

    # then the backlog drains and the primary has each post once, in order.
    wait_for(lambda: stack.call("GET", "/status").body["backlog"] == 0, timeout=30)
    received = [p for p in http("GET", f"{primary}/received").body if p["author"] == "outage"]
    assert [p["id"] for p in received] == [p["id"] for p in posts]
    assert stack.call("GET", "/status").body["mode"] == "normal"
    assert stack.call("GET", f"/posts/{posts[0]['id']}").body["state"] == "replayed"


def test_an_existing_aws_endpoint_is_used_and_provisioned():
    # Given a moto server someone else runs (a shared one, or LocalStack),
    from devtools.localaws import start_moto_server

    shared, url = start_moto_server()
    try:
        running = start_stack(
            {
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        try:
            # then the stack uses it, creates its table and bucket there, and works.
            assert running.aws_endpoint == url
            token = running.new_user("shared")
            assert running.call("POST", "/posts", {"text": "on a shared endpoint"}, token=token).status == 201
            assert "lifeboat-local" in running.aws_client("dynamodb").list_tables()["TableNames"]
            buckets = [b["Name"] for b in running.aws_client("s3").list_buckets()["Buckets"]]
            assert "lifeboat-local" in buckets
        finally:
            assert running.stop() == 0
    finally:
        shared.stop()
