"""Replay as the author with no admin step (issue 11): a mirrored user posts
during the outage with the token their Mastodon app holds, and the replay
posts as them with that same token, kept KMS-encrypted only until their
backlog is empty. The fake Mastodon is a real server on loopback, the
store is moto."""

from __future__ import annotations

import json
import logging

import pytest

from chalicelib import wiring
from chalicelib.accounts.tokens import token_hash
from chalicelib.errors import StoreUnavailable
from chalicelib.mirror.changes import AccountChange, CredentialChange
from chalicelib.upstream import tokens as upstream_tokens
from chalicelib.upstream.mastodon import MastodonUpstream
from chalicelib.upstream.port import UpstreamPost
from devtools.fake_mastodon import FakeMastodon
from tests.conftest import ADMIN_TOKEN, TABLE
from tests.e2e.test_recovery import drain, run_job

pytestmark = pytest.mark.e2e
CREATED = "2026-01-01T00:00:00.000Z"
# The tokens the fake Mastodon knows: the users' apps hold them.
APP_TOKENS = {"app-token-of-ana-0123456789": "ana", "app-token-of-bo-0123456789": "bo"}
ADMIN_REGISTERED = {"admin-registered-token-of-bo-99": "bo"}
ALL_SCOPES = frozenset({"read", "write", "follow"})


@pytest.fixture
def mastodon(monkeypatch, moto):
    """A fake Mastodon primary, down at first, that Lifeboat mirrors and replays into."""
    with FakeMastodon({**APP_TOKENS, **ADMIN_REGISTERED}, seed=7) as server:
        for name, value in {
            "UPSTREAM_URL": server.url,
            "UPSTREAM_KIND": "mastodon",
            "UPSTREAM_TIMEOUT_SECONDS": "1",
            "MIRROR_ENABLED": "true",
            "REPLAY_MAX_RPS": "400",
            "REPLAY_SAFETY_MARGIN_SECONDS": "2",
            # moto's indexes are consistent at once: no settle time to wait.
            "ARCHIVE_SETTLE_SECONDS": "0",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("UPSTREAM_TOKEN", raising=False)
        wiring.reset()
        upstream_tokens.ensure_key(wiring.kms(), wiring.upstream_settings().token_key_id)
        server.configure(down=True)
        yield server


def mirror_user(username: str, *tokens: str) -> None:
    """The account and its credentials as the mirror stores them: digests only."""
    store = wiring.mirror_store()
    store.apply_account(AccountChange(username, username.title(), CREATED, False, None))
    store.apply_credentials([CredentialChange(username, token_hash(token), ALL_SCOPES, False) for token in tokens])


def table_items() -> list[dict]:
    items, query = [], {"TableName": TABLE}
    while True:
        page = wiring.dynamodb().scan(**query)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def kept_items() -> list[dict]:
    """Every trace of a kept token in the table: the attributes on a user
    item, and the markers the replay retires them by."""
    return [item for item in table_items() if "kept_token" in item or item["PK"]["S"].startswith("KEPT#")]


class Answers:
    """Every answer the API gave in a test, to look for a token in."""

    def __init__(self, api) -> None:
        self._api = api
        self.seen: list[str] = []

    def call(self, method: str, path: str, body=None, **kw):
        reply = self._api.call(method, path, body, **kw)
        self.seen.append(json.dumps([reply.status, reply.headers, reply.body]))
        return reply


def test_mirrored_users_are_replayed_with_their_own_tokens_which_are_then_forgotten(api, mastodon, capfd, caplog):
    caplog.set_level(logging.INFO)
    ana, bo = "app-token-of-ana-0123456789", "app-token-of-bo-0123456789"
    mirror_user("ana", ana)
    mirror_user("bo", bo)
    answers = Answers(api)

    # During the outage, with their apps' own tokens and no admin step: the
    # native API, the Mastodon API, and replies across authors.
    first = answers.call("POST", "/posts", {"text": "ana during the outage #1"}, token=ana).body
    answers.call("POST", "/posts", {"text": "bo #1 replying to ana", "in_reply_to": first["id"]}, token=bo)
    second = answers.call("POST", "/api/v1/statuses", {"status": "ana #2, from her app"}, token=ana).body
    answers.call("POST", "/api/v1/statuses", {"status": "bo #2"}, token=bo)
    answers.call("POST", "/posts", {"text": "ana #3 replying", "in_reply_to": first["id"]}, token=ana)
    run_job()
    assert mastodon.statuses() == []
    stored = kept_items()
    assert len(stored) == 4, "each token is kept once, however many posts: the user item and its marker"
    assert ana not in repr(stored) and bo not in repr(stored)

    mastodon.configure(down=False)
    drain()

    statuses = mastodon.statuses()  # in the order they arrived
    by_author = {name: [s.text for s in statuses if s.author == name] for name in ("ana", "bo")}
    assert by_author == {
        "ana": ["ana during the outage #1", "ana #2, from her app", "ana #3 replying"],
        "bo": ["bo #1 replying to ana", "bo #2"],
    }, "exactly once, in each author's order, each as its author"
    assert len(statuses) == 5, "nothing else arrived"
    texts = {s.text: s for s in statuses}
    assert texts["bo #1 replying to ana"].in_reply_to_id == texts["ana during the outage #1"].id
    assert texts["ana #3 replying"].in_reply_to_id == texts["ana during the outage #1"].id
    assert answers.call("GET", f"/posts/{first['id']}").body["state"] == "replayed"
    assert kept_items() == [], "forgotten once their backlogs are empty"

    # A delete of a replayed post must go upstream as ana too: it keeps her
    # token again, and it is forgotten again once that delete is done.
    assert answers.call("DELETE", f"/api/v1/statuses/{second['id']}", token=ana).status == 200
    assert len(kept_items()) == 2
    drain()
    assert [(s.author, s.text) for s in mastodon.deleted()] == [("ana", "ana #2, from her app")]
    assert kept_items() == []

    recorded = capfd.readouterr()
    logged = recorded.out + recorded.err + caplog.text
    assert "replay finished" in logged, "the logs were captured: the checks below are not vacuous"
    assert ana not in logged and bo not in logged
    assert len(answers.seen) == 7
    assert all(ana not in answer and bo not in answer for answer in answers.seen)


def test_a_kept_token_the_primary_refuses_falls_back_to_the_admin_registered_one(api, mastodon):
    # bo's app token was revoked on Mastodon after the mirror last ran: the
    # mirror still accepts it, Mastodon does not.
    revoked = "app-token-of-bo-revoked-000"
    mirror_user("bo", revoked)
    answers = Answers(api)
    assert answers.call("POST", "/posts", {"text": "bo during the outage"}, token=revoked).status == 201
    reply = api.call(
        "PUT", "/admin/users/bo/upstream-token", {"token": "admin-registered-token-of-bo-99"}, token=ADMIN_TOKEN
    )
    assert reply.status == 204

    mastodon.configure(down=False)
    drain()

    assert [(s.author, s.text) for s in mastodon.statuses()] == [("bo", "bo during the outage")]
    assert kept_items() == []
    assert wiring.recovery_admin().status()["dead_letters"] == 0


def test_a_refused_kept_token_without_an_admin_one_is_a_dead_letter_as_before(api, mastodon):
    revoked = "app-token-of-bo-revoked-000"
    mirror_user("bo", revoked)
    post = api.post("/posts", {"text": "bo, unreplayable"}, token=revoked).body

    mastodon.configure(down=False)
    drain()

    letters = api.get("/admin/dead-letters", token=ADMIN_TOKEN).body["dead_letters"]
    assert [(letter["id"], letter["failure_reason"]) for letter in letters] == [
        (post["id"], "HTTP None: no upstream token registered for bo")
    ]
    assert mastodon.statuses() == []
    assert revoked not in json.dumps(letters)


def test_the_admin_registered_token_is_used_when_none_was_kept(api, mastodon):
    # bo posts with a Lifeboat token (the admin made him a user): nothing is kept.
    mirror_user("bo")
    lifeboat_token = api.call("POST", "/admin/users/bo/token", token=ADMIN_TOKEN).body["token"]
    assert api.post("/posts", {"text": "bo with a Lifeboat token"}, token=lifeboat_token).status == 201
    assert kept_items() == []
    reply = api.call(
        "PUT", "/admin/users/bo/upstream-token", {"token": "admin-registered-token-of-bo-99"}, token=ADMIN_TOKEN
    )
    assert reply.status == 204

    mastodon.configure(down=False)
    drain()

    assert [(s.author, s.text) for s in mastodon.statuses()] == [("bo", "bo with a Lifeboat token")]


class UnreadableKeptTokens:
    def get(self, username: str) -> str | None:
        raise StoreUnavailable("read kept token: DynamoDB is away")

    def refused(self, username: str, token: str) -> None:
        raise AssertionError("nothing was sent, so nothing was refused")


def test_a_kept_token_that_cannot_be_read_now_is_retried_later_not_sent_with_another():
    with FakeMastodon(ADMIN_REGISTERED) as server:
        adapter = MastodonUpstream(
            server.url, {"bo": "admin-registered-token-of-bo-99"}.get, kept=UnreadableKeptTokens()
        )
        post = UpstreamPost(id="01J0000000000000000000000A", author="bo", text="hi", created_at="")

        result = adapter.send(post)

        assert (result.outcome, result.detail) == ("transient", "kept token unavailable")
        assert server.statuses() == []
