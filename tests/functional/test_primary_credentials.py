"""A token the primary issued works on Lifeboat through its mirrored digest,
within its scopes: read for reads, write for posting and deleting, follow
for follows. A revoked token or a suspended account is refused."""

from __future__ import annotations

import pytest

import app
from chalicelib import wiring
from chalicelib.accounts.tokens import token_hash
from chalicelib.api.routing import SCOPES
from chalicelib.aws import clients as aws
from chalicelib.mirror.changes import AccountChange, CredentialChange, PostChange
from chalicelib.upstream.tokens import ensure_key

CREATED = "2026-01-01T00:00:00.000Z"
OUTSIDE = {"error": "This action is outside the authorized scopes"}


@pytest.fixture(autouse=True)
def mirroring(monkeypatch):
    # Only a stack that mirrors reads the mirrored posts' partitions.
    monkeypatch.setenv("MIRROR_ENABLED", "true")


@pytest.fixture
def mirror(api):
    ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
    store = wiring.mirror_store()
    for name in ("carol", "dave"):
        store.apply_account(AccountChange(name, name.title(), CREATED, False, None))
    return store


def grant(mirror, username, token, scopes, revoked=False):
    mirror.apply_credentials([CredentialChange(username, token_hash(token), frozenset(scopes), revoked)])
    return token


def test_a_primary_token_posts_with_no_admin_step(api, mirror):
    token = grant(mirror, "carol", "carol-primary", {"read", "write", "follow"})
    created = api.post("/api/v1/statuses", {"status": "from the primary's app"}, token=token)
    assert created.status == 200 and created.body["account"]["username"] == "carol"
    assert api.post("/posts", {"text": "native"}, token=token).status == 201
    assert api.post("/api/v1/accounts/dave/follow", token=token).body["following"] is True
    assert api.get("/api/v1/timelines/home", token=token).status == 200


def test_a_read_only_token_reads_but_cannot_post_or_follow(api, mirror):
    token = grant(mirror, "carol", "carol-read", {"read"})
    assert api.get("/api/v1/accounts/verify_credentials", token=token).status == 200
    refused = api.post("/api/v1/statuses", {"status": "no"}, token=token)
    assert (refused.status, refused.body) == (403, OUTSIDE)
    assert api.post("/api/v1/accounts/dave/follow", token=token).status == 403
    native = api.post("/posts", {"text": "no"}, token=token)
    assert (native.status, native.body["error"]) == (403, "insufficient_scope")


def test_a_write_token_without_read_cannot_read_home(api, mirror):
    token = grant(mirror, "carol", "carol-write", {"write"})
    assert api.get("/api/v1/timelines/home", token=token).body == OUTSIDE


def test_a_revoked_token_is_refused(api, mirror):
    token = grant(mirror, "carol", "carol-old", {"read", "write"})
    grant(mirror, "carol", token, {"read", "write"}, revoked=True)
    assert api.post("/posts", {"text": "no"}, token=token).status == 401


def test_a_suspended_account_cannot_sign_in(api, mirror):
    token = grant(mirror, "dave", "dave-primary", {"read", "write"})
    mirror.apply_account(AccountChange("dave", "Dave", CREATED, True, None))
    assert api.get("/api/v1/accounts/verify_credentials", token=token).status == 401


def test_lifeboat_tokens_keep_every_scope(api, mirror):
    token = api.new_user("alice")
    assert api.post("/api/v1/statuses", {"status": "mine"}, token=token).status == 200
    assert api.post("/api/v1/accounts/carol/follow", token=token).status == 200


def test_every_route_declares_its_scope():
    views = [entry.view_function for methods in app.app.routes.values() for entry in methods.values()]
    assert len(views) > 30
    undeclared = [view.__name__ for view in views if getattr(view, "scope", None) not in SCOPES]
    assert undeclared == []


def test_a_mirrored_post_whose_author_is_not_mirrored_yet_is_shown_not_a_500(api, mirror):
    # The Mastodon source can deliver a post one cycle before its author's
    # account; the status still renders, with the account read from the post.
    mirror.apply_posts([PostChange("9001", "erin", "before her account", CREATED, None, False)], 7, check_ours=False)

    reply = api.get("/api/v1/timelines/public")

    assert reply.status == 200, reply.body
    assert [(s["account"]["username"], s["content"]) for s in reply.body] == [("erin", "<p>before her account</p>")]
