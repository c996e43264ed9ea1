"""The mirror's S3 inbox end to end, on the local stack (./scripts/run with
MIRROR_ENABLED, its own moto server and scheduler): change documents put
into `mirror/inbox/` as a primary or an operator would are ingested by the
scheduled job, and the users they name sign in with their primary's tokens;
an unreadable object is rejected with its reason; and the output of
scripts/mastodon_export.sql, run against a real PostgreSQL, lets a Mastodon
user in with their Mastodon token."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.e2e.stack import start_stack, wait_for
from tests.e2e.test_mastodon_export import PEOPLE, SCHEMA, TOKENS, export, seed

pytestmark = pytest.mark.e2e

BUCKET = "lifeboat-local"
CREATED = "2026-11-01T00:00:00.000Z"
ANN_TOKEN = "ann-token-on-the-primary"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def jsonl(*documents) -> bytes:
    return "".join(json.dumps(document) + "\n" for document in documents).encode()


def account(name):
    return {"type": "account", "username": name, "display_name": name.title(), "created_at": CREATED,
            "suspended": False, "password_bcrypt": None}  # fmt: skip


def credential(name, token):
    return {"type": "credential", "username": name, "token_sha256": digest(token), "scopes": "read write follow",
            "revoked": False}  # fmt: skip


def post(upstream_id, author, text):
    return {"type": "post", "id": upstream_id, "author": author, "text": text, "created_at": CREATED,
            "in_reply_to": None, "deleted": False}  # fmt: skip


@pytest.fixture(scope="module")
def stack():
    running = start_stack({"MIRROR_ENABLED": "true"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def s3(stack):
    return stack.aws_client("s3")


def keys(s3, prefix: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def home_contents(stack) -> list[str]:
    home = stack.call("GET", "/api/v1/timelines/home", token=ANN_TOKEN)
    assert home.status == 200, home.body
    return sorted(status["content"] for status in home.body)


def push(s3, name: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"mirror/inbox/{name}", Body=body)


def test_a_pushed_export_lets_its_users_in_with_their_home_timelines_full(stack, s3):
    body = jsonl(
        account("ann"),
        account("ben"),
        account("cat"),
        account("dan"),
        credential("ann", ANN_TOKEN),
        {"type": "follow", "follower": "ann", "followee": "ben", "active": True},
        {"type": "follow", "follower": "ann", "followee": "cat", "active": True},
        post("b1", "ben", "ben was here"),
    )
    body += b'{"type": "post", "id": "broken"}\n' + b"this line is not JSON\n"
    body += jsonl(post("c1", "cat", "cat too"), post("d1", "dan", "dan, whom ann does not follow"))
    before = stack.call("GET", "/status").body["mirror"]
    push(s3, "20261130T120000Z.jsonl", body)

    # A move is a copy, then a delete: wait for both, or the inbox may be read between them.
    wait_for(
        lambda: keys(s3, "mirror/done/") == ["mirror/done/20261130T120000Z.jsonl"] and not keys(s3, "mirror/inbox/"),
        timeout=60,
    )
    # The malformed lines were skipped and the lines after them applied; the
    # stream fans the mirrored posts out into ann's home a moment after.
    expected = ["<p>ben was here</p>", "<p>cat too</p>"]
    wait_for(lambda: home_contents(stack) == expected, timeout=10)
    posted = stack.call("POST", "/posts", {"text": "ann, on Lifeboat"}, token=ANN_TOKEN)
    assert (posted.status, posted.body["author"]) == (201, "ann")
    after = stack.call("GET", "/status").body["mirror"]
    assert (after["accounts"] - before["accounts"], after["posts"] - before["posts"]) == (4, 3)


def test_an_unreadable_object_is_rejected_with_its_reason(stack, s3):
    gzip_bytes = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256))
    push(s3, "export.jsonl.gz", gzip_bytes)

    reason_key = "mirror/rejected/export.jsonl.gz.reason.json"
    wait_for(lambda: reason_key in keys(s3, "mirror/rejected/") and not keys(s3, "mirror/inbox/"), timeout=60)
    assert s3.get_object(Bucket=BUCKET, Key="mirror/rejected/export.jsonl.gz")["Body"].read() == gzip_bytes
    reason = json.loads(s3.get_object(Bucket=BUCKET, Key=reason_key)["Body"].read())
    assert reason["reason"] == "not JSON Lines: its first line is not UTF-8"
    assert reason["size"] == len(gzip_bytes)


@pytest.fixture(scope="module")
def mastodon_export(postgres) -> str:
    """scripts/mastodon_export.sql's output for the export test's people and
    tokens, from a real PostgreSQL with Mastodon's tables."""
    url = postgres.create_database("mastodon_inbox", SCHEMA, seed(PEOPLE, TOKENS))
    result = export(url)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_mastodon_export_pushed_to_the_inbox_lets_a_mastodon_user_in_with_their_token(stack, s3, mastodon_export):
    alice_tokens = [token for token in TOKENS if token.owner == "alice"]
    usable = next(token for token in alice_tokens if not token.expect_revoked and token.scopes == "read write follow")
    revoked = next(token for token in alice_tokens if token.expect_revoked)
    push(s3, "mastodon-20261130T120500Z.jsonl", mastodon_export.encode())

    wait_for(lambda: "mirror/done/mastodon-20261130T120500Z.jsonl" in keys(s3, "mirror/done/"), timeout=60)
    me = stack.call("GET", "/api/v1/accounts/verify_credentials", token=usable.secret)
    assert (me.status, me.body["username"]) == (200, "alice")
    assert stack.call("POST", "/posts", {"text": "hello from Mastodon"}, token=usable.secret).status == 201
    assert stack.call("GET", "/api/v1/accounts/verify_credentials", token=revoked.secret).status == 401
