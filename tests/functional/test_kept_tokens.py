"""The write path keeps the primary token a post was made with, for a
Mastodon primary's replay (issue 11): sealed with KMS once, then only
checked by a condition on the update every post makes anyway; kept through
the S3 spool; retired once its author is done; never for a Lifeboat token."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from chalicelib import wiring
from chalicelib.accounts.tokens import token_hash
from chalicelib.aws import dynamo
from chalicelib.maintenance import MaintenanceReport
from chalicelib.mirror.changes import AccountChange, CredentialChange
from chalicelib.upstream.tokens import ensure_key
from tests.conftest import BUCKET, TABLE

CREATED = "2026-01-01T00:00:00.000Z"
TOKEN = "app-token-of-ana-0123456789"
OTHER_TOKEN = "ana-second-app-token-4567"
ALL_SCOPES = frozenset({"read", "write", "follow"})


@pytest.fixture(autouse=True)
def mastodon_primary(monkeypatch, moto):
    monkeypatch.setenv("UPSTREAM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("UPSTREAM_KIND", "mastodon")
    monkeypatch.setenv("MIRROR_ENABLED", "true")
    monkeypatch.delenv("UPSTREAM_TOKEN", raising=False)
    wiring.reset()
    ensure_key(wiring.kms(), wiring.upstream_settings().token_key_id)
    store = wiring.mirror_store()
    store.apply_account(AccountChange("ana", "Ana", CREATED, False, None))
    store.apply_credentials([CredentialChange("ana", token_hash(t), ALL_SCOPES, False) for t in (TOKEN, OTHER_TOKEN)])


class Calls:
    """The AWS calls the app makes, with their parameters."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict]] = []
        for client in (wiring.dynamodb(), wiring.kms()):
            client.meta.events.register("provide-client-params", self._record)

    def _record(self, params, model, **_):
        self.made.append((model.name, params))

    def named(self, name: str) -> list[dict]:
        return [params for called, params in self.made if called == name]

    def clear(self) -> None:
        self.made.clear()


def user_item() -> dict:
    return wiring.dynamodb().get_item(TableName=TABLE, Key=dynamo.key("USER#ana", "PROFILE"))["Item"]


def markers() -> list[dict]:
    items = wiring.dynamodb().scan(TableName=TABLE)["Items"]
    return [item for item in items if item["PK"]["S"].startswith("KEPT#")]


def test_the_first_post_seals_the_token_and_later_ones_only_check_it(api):
    calls = Calls()
    assert api.post("/posts", {"text": "one"}, token=TOKEN).status == 201
    assert len(calls.named("Encrypt")) == 1
    assert len(digest_reads(calls)) == 1, "a check that finds no token, then the write with it"
    (kept,) = keeping_writes(calls)
    written = [item.get("Update", {}).get("Key") or item["Put"]["Item"] for item in kept["TransactItems"]]
    assert sorted(key["PK"]["S"].split("#")[0] for key in written) == ["KEPT", "USER"], "the token and its marker"

    calls.clear()
    for n in range(3):
        assert api.post("/api/v1/statuses", {"status": f"more {n}"}, token=TOKEN).status == 200
    assert calls.named("Encrypt") == [] and keeping_writes(calls) == [], "no extra write"
    assert len(digest_reads(calls)) == 3, "one read of the digest per post"
    assert all("kept" not in json.dumps(put) for put in calls.named("PutItem"))

    stored = user_item()
    assert stored["kept_token_sha256"]["S"] == token_hash(TOKEN)
    assert TOKEN not in json.dumps(stored, default=str) and len(markers()) == 1
    assert wiring.kept_tokens().get("ana") == TOKEN


def digest_reads(calls: Calls) -> list[dict]:
    return [read for read in calls.named("GetItem") if read.get("ProjectionExpression") == "kept_token_sha256"]


def keeping_writes(calls: Calls) -> list[dict]:
    """The transactions that keep a token (the stream consumer's are others)."""
    return [call for call in calls.named("TransactWriteItems") if "KEPT#" in json.dumps(call)]


def test_a_post_with_another_token_of_the_author_keeps_that_one(api):
    api.post("/posts", {"text": "from the phone"}, token=TOKEN)
    api.post("/posts", {"text": "from the laptop"}, token=OTHER_TOKEN)

    assert user_item()["kept_token_sha256"]["S"] == token_hash(OTHER_TOKEN)
    assert [marker["token_sha256"]["S"] for marker in markers()] == [token_hash(OTHER_TOKEN)]
    assert wiring.kept_tokens().get("ana") == OTHER_TOKEN


def test_a_spooled_post_keeps_its_token_through_the_fold(api, outage):
    outage.unreachable(wiring.dynamodb(), "TransactWriteItems")
    spooled = api.post("/posts", {"text": "while DynamoDB is away"}, token=TOKEN)
    assert spooled.status == 202
    (key,) = [obj["Key"] for obj in wiring.s3().list_objects_v2(Bucket=BUCKET, Prefix="spool/")["Contents"]]
    document = wiring.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert TOKEN not in document and json.loads(document)["kept_token"]["sha256"] == token_hash(TOKEN)
    assert "kept_token" not in user_item()
    outage.end()

    wiring.maintenance().fold_spool(MaintenanceReport())

    assert wiring.post_store().get_post(spooled.body["id"]).state == "pending"
    assert wiring.kept_tokens().get("ana") == TOKEN and len(markers()) == 1


def test_a_token_is_retired_only_once_its_author_is_quiet_and_kept_again_by_the_next_post(api):
    api.post("/posts", {"text": "one"}, token=TOKEN)
    posted_at = user_item()["feed_changed_at"]["S"]

    assert wiring.kept_tokens().retire(quiet_before=posted_at) == 0, "posted at that moment: not quiet"
    assert wiring.kept_tokens().get("ana") == TOKEN
    assert wiring.kept_tokens().retire(quiet_before="9999-01-01T00:00:00.000Z") == 1
    assert wiring.kept_tokens().get("ana") is None and markers() == []
    assert "kept_token_sha256" not in user_item()

    api.post("/posts", {"text": "two"}, token=TOKEN)
    assert wiring.kept_tokens().get("ana") == TOKEN and len(markers()) == 1


def test_a_refused_token_is_dropped_but_not_a_newer_one(api):
    api.post("/posts", {"text": "one"}, token=TOKEN)
    api.post("/posts", {"text": "two"}, token=OTHER_TOKEN)

    wiring.kept_tokens().refused("ana", TOKEN)
    assert wiring.kept_tokens().get("ana") == OTHER_TOKEN
    wiring.kept_tokens().refused("ana", OTHER_TOKEN)
    assert wiring.kept_tokens().get("ana") is None and markers() == []


def test_a_delete_of_a_replayed_post_keeps_the_token_again(api):
    posted = api.post("/posts", {"text": "one"}, token=TOKEN).body
    wiring.kept_tokens().retire(quiet_before="9999-01-01T00:00:00.000Z")
    post = wiring.post_store().get_post(posted["id"])
    wiring.backlog_store().claim_for_sending(post, "run", CREATED)
    wiring.backlog_store().mark_replayed(post, "run", "1001", CREATED)

    assert api.delete(f"/posts/{posted['id']}", token=TOKEN).status == 204

    assert wiring.post_store().get_post(posted["id"]).state == "delete_pending"
    assert wiring.kept_tokens().get("ana") == TOKEN


def test_lifeboat_tokens_keep_nothing(api):
    lifeboat = api.new_user("alice")
    assert api.post("/posts", {"text": "mine"}, token=lifeboat).status == 201
    assert markers() == [] and wiring.kept_tokens().get("alice") is None


def test_a_generic_primary_keeps_nothing(api, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KIND", "generic")
    monkeypatch.setenv("UPSTREAM_TOKEN", "generic-primary-token")
    wiring.reset()
    calls = Calls()

    assert api.post("/posts", {"text": "one"}, token=TOKEN).status == 201

    assert keeping_writes(calls) == [] and digest_reads(calls) == [] and calls.named("Encrypt") == []
    assert "kept_token" not in user_item() and markers() == []


def test_retiring_many_authors_drops_exactly_those_quiet_since(api):
    store, names = wiring.mirror_store(), [f"user{n}" for n in range(40)]
    for name in names:
        store.apply_account(AccountChange(name, name, CREATED, False, None))
    store.apply_credentials([CredentialChange(name, token_hash(f"token-{name}"), ALL_SCOPES, False) for name in names])
    for name in names:
        assert api.post("/posts", {"text": f"{name} posts"}, token=f"token-{name}").status == 201
    # The last ten post again after this moment: they are not quiet.
    moment = wiring.dynamodb().get_item(TableName=TABLE, Key=dynamo.key("USER#user29", "PROFILE"))["Item"]
    for name in names[30:]:
        api.post("/posts", {"text": f"{name} again"}, token=f"token-{name}")

    retired = wiring.kept_tokens().retire(quiet_before=moment["feed_changed_at"]["S"] + "~")

    assert retired == 30
    assert sorted(item["SK"]["S"] for item in markers()) == sorted(names[30:])
    assert [wiring.kept_tokens().get(name) for name in names[29:31]] == [None, "token-user30"]


def test_a_key_that_refuses_to_seal_costs_the_post_nothing_and_the_next_post_keeps_the_token(api):
    def disabled(**_):
        error = {"Error": {"Code": "DisabledException", "Message": "the key is disabled"}}
        raise ClientError(error, "Encrypt")

    wiring.kms().meta.events.register_first("before-send.kms.Encrypt", disabled)
    assert api.post("/posts", {"text": "while the key is disabled"}, token=TOKEN).status == 201
    assert "kept_token" not in user_item() and markers() == []

    wiring.kms().meta.events.unregister("before-send.kms.Encrypt", disabled)
    assert api.post("/posts", {"text": "once it is back"}, token=TOKEN).status == 201
    assert wiring.kept_tokens().get("ana") == TOKEN


def kept_queries(calls: Calls) -> list[str]:
    partitions = (params["ExpressionAttributeValues"][":pk"]["S"] for params in calls.named("Query"))
    return [pk for pk in partitions if pk.startswith("KEPT#")]


def test_at_512_shards_a_drained_replay_queries_only_the_marker_shards_the_stream_noted(api, monkeypatch):
    """Issue 14: the first drained run visits every marker shard, an idle
    one none (or the rolling sweep's one, if the minute turned), and after
    a post its author's, until the token goes."""
    monkeypatch.setenv("WRITE_SHARDS", "512")
    wiring.reset()
    calls = Calls()
    wiring.recovery().replay(lambda: 60.0)
    assert len(kept_queries(calls)) == 512

    calls.clear()
    wiring.recovery().replay(lambda: 60.0)
    assert len(kept_queries(calls)) <= 1

    posted = api.post("/posts", {"text": "one"}, token=TOKEN).body
    post = wiring.post_store().get_post(posted["id"])
    wiring.backlog_store().claim_for_sending(post, "run", CREATED)  # replayed: the backlog is empty again
    wiring.backlog_store().mark_replayed(post, "run", "1001", CREATED)
    calls.clear()
    for _ in range(2):
        wiring.recovery().replay(lambda: 60.0)
    (marker,) = markers()
    queried = kept_queries(calls)
    assert queried.count(marker["PK"]["S"]) == 2, "not quiet yet: its shard is carried"
    assert len(queried) <= 4
