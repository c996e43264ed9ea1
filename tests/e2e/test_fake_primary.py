"""The fake primary keeps the ingest protocol's promises over real HTTP, and
its faults can be switched at runtime and from the command line."""

from __future__ import annotations

import http.client
import json
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devtools.fake_primary import FakePrimary
from tests.concurrency import run_at_once
from tests.e2e.conftest import PRIMARY_TOKEN

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "devtools.fake_primary"]


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: object


def call(
    url: str,
    method: str = "GET",
    body: object = None,
    headers: dict | None = None,
    raw: bytes | None = None,
    timeout: float = 5.0,
) -> Answer:
    """One plain HTTP exchange; any status is an answer."""
    parts = urlsplit(url)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, parts.path, body=data, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, json.loads(response.read() or b"null"))
    finally:
        connection.close()


def ingest(primary: FakePrimary, key: str | None = "key-1", token: str = PRIMARY_TOKEN, **changes) -> Answer:
    payload = {
        "id": "01HZY0000000000000000000AA",
        "author": "alice",
        "text": "hello",
        "created_at": "2024-05-01T10:00:00.000Z",
        "in_reply_to": None,
    }
    payload.update(changes)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return call(primary.url + "/posts", "POST", payload, headers)


def test_health_answers_ok(primary):
    answer = call(primary.url + "/health")

    assert (answer.status, answer.body) == (200, {"status": "ok"})


def test_a_new_post_gets_an_increasing_id_and_is_listed_with_its_metadata(primary):
    first = ingest(primary, key="k1")
    second = ingest(primary, key="k2", id="01HZY0000000000000000000BB", in_reply_to="1")

    assert (first.status, first.body["id"], second.status, second.body["id"]) == (201, "1", 201, "2")
    listed = call(primary.url + "/received").body
    assert [(post["upstream_id"], post["id"], post["idempotency_key"]) for post in listed] == [
        ("1", "01HZY0000000000000000000AA", "k1"),
        ("2", "01HZY0000000000000000000BB", "k2"),
    ]
    assert listed[1]["in_reply_to"] == "1"
    assert {"author", "text", "created_at", "received_at"} <= set(listed[0])


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_ingest_needs_the_bearer_token(primary, token):
    assert ingest(primary, token=token).status == 401
    assert primary.received() == []


def test_ingest_refuses_bad_json_and_missing_fields(primary):
    headers = {"Authorization": f"Bearer {PRIMARY_TOKEN}"}

    assert call(primary.url + "/posts", "POST", raw=b"{not json", headers=headers).status == 400
    assert call(primary.url + "/posts", "POST", {"id": "x", "author": "alice"}, headers).status == 400
    assert ingest(primary, text=None).status == 400
    assert primary.received() == []


def test_an_answer_shows_the_post_stored_under_the_key(primary):
    stored = {"author": "alice", "text": "first", "created_at": "2024-05-01T10:00:00.000Z", "in_reply_to": None}
    first = ingest(primary, key="k1", text="first")
    again = ingest(primary, key="k1", text="another text", created_at="2024-06-01T10:00:00.000Z")
    direct_id = primary.add_direct_post("alice", "typed on the primary", key="k2")
    direct = ingest(primary, key="k2")

    assert (first.status, first.body) == (201, {"id": "1", **stored})
    assert (again.status, again.body) == (200, {"id": "1", **stored})
    assert (direct.status, direct.body["id"], direct.body["text"]) == (200, direct_id, "typed on the primary")
    assert [post.upstream_id for post in primary.received()] == ["1"], "a direct post is not a replayed one"


def test_same_key_from_many_threads_at_once_is_stored_once(primary):
    # Given 32 clients sending the same (author, key) at the same instant
    answers: list[Answer] = run_at_once(lambda: ingest(primary, key="same-key"), threads=32)
    # Then exactly one is stored, one answer says "created" and all carry its id
    assert len(primary.received()) == 1
    assert sorted(answer.status for answer in answers) == [200] * 31 + [201]
    assert {answer.body["id"] for answer in answers} == {"1"}
    assert primary.stats()["idempotent_hits"] == 31


def test_idempotency_keys_are_scoped_per_author(primary):
    alice = ingest(primary, key="shared")
    bob = ingest(primary, key="shared", author="bob", id="01HZY0000000000000000000BB")

    assert (alice.status, bob.status) == (201, 201)
    assert alice.body != bob.body


def test_the_same_post_under_another_key_is_stored_and_counted_as_a_duplicate(primary):
    ingest(primary, key="first")
    ingest(primary, key="second")

    assert len(primary.received()) == 2
    assert primary.stats()["duplicates"] == 1


def test_control_switches_the_primary_down_and_up(primary):
    assert call(primary.url + "/control", "POST", {"down": True, "retry_after": 9}).body["down"] is True

    down_health, down_ingest = call(primary.url + "/health"), ingest(primary)
    call(primary.url + "/control", "POST", {"down": False})

    assert (down_health.status, down_ingest.status, down_ingest.headers["Retry-After"]) == (503, 503, "9")
    assert call(primary.url + "/control").body["down"] is False
    assert ingest(primary).status == 201


def test_control_updates_partially_and_refuses_bad_values(primary):
    call(primary.url + "/control", "POST", {"latency_ms": 5})
    assert call(primary.url + "/control", "POST", {"fail_rate": 0.25}).body["latency_ms"] == 5

    assert call(primary.url + "/control", "POST", {"fail_rate": 2}).status == 400
    assert call(primary.url + "/control", "POST", {"no_such_flag": 1}).status == 400
    assert call(primary.url + "/control", "POST", raw=b"[]").status == 400
    assert primary.mode.fail_rate == 0.25


def test_control_reset_forgets_posts_and_counters(primary):
    ingest(primary)

    call(primary.url + "/control/reset", "POST")

    assert call(primary.url + "/received").body == []
    assert set(call(primary.url + "/stats").body.values()) == {0}
    assert ingest(primary).status == 201


def test_fail_rate_is_reproducible_with_a_seed():
    def statuses(seed: int) -> list[int]:
        with FakePrimary(PRIMARY_TOKEN, seed=seed) as primary:
            primary.configure(fail_rate=0.5)
            return [ingest(primary, key=f"k{n}").status for n in range(20)]

    first, second = statuses(7), statuses(7)

    assert first == second
    assert {500, 201} <= set(first)


def test_rate_limit_answers_429_and_sends_headers_on_every_answer(primary):
    primary.configure(rate_limit=1)

    accepted, refused = ingest(primary, key="a"), ingest(primary, key="b")

    assert (accepted.status, accepted.headers["X-RateLimit-Limit"], accepted.headers["X-RateLimit-Remaining"]) == (
        201,
        "1",
        "0",
    )
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert primary.stats()["rejected_429"] == 1


def test_a_lost_answer_stores_the_post_and_hangs_up(primary):
    primary.configure(lose_answer_rate=1.0)

    with pytest.raises(http.client.RemoteDisconnected):
        ingest(primary)

    assert len(primary.received()) == 1
    assert primary.stats()["lost_answers"] == 1


def test_a_stalled_request_gets_no_answer_before_the_client_gives_up(primary):
    primary.configure(timeout_rate=1.0, stall_seconds=30)

    with pytest.raises(TimeoutError):
        call(primary.url + "/health", timeout=0.3)

    assert primary.stats()["timeouts"] == 1


def read_line(process: subprocess.Popen, deadline_seconds: float) -> str:
    ready, _, _ = select.select([process.stdout], [], [], deadline_seconds)
    assert ready, "the fake primary printed nothing in time"
    return process.stdout.readline()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_its_url_serves_and_stops_on_a_signal(signum):
    process = subprocess.Popen(
        [*COMMAND, "--port", "0", "--token", PRIMARY_TOKEN, "--seed", "3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(process, 10)
        assert line.startswith("Fake primary: http://127.0.0.1:")
        url = line.split(": ", 1)[1].strip()
        assert call(url + "/health").status == 200

        process.send_signal(signum)

        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_cli_refuses_an_impossible_fault_rate():
    finished = subprocess.run(
        [*COMMAND, "--fail-rate", "1.5"], cwd=ROOT, capture_output=True, text=True, timeout=10
    )

    assert finished.returncode == 2
    assert "fail_rate" in finished.stderr
