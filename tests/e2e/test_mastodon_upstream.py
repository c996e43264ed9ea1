"""Replay into a Mastodon primary (the loopback fake Mastodon), with the
store on moto: per-user tokens, exactly once and in each author's order,
also when answers are lost after Mastodon's idempotency window."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.aws import dynamo
from chalicelib.upstream import tokens as upstream_tokens
from chalicelib.upstream.mastodon import MastodonUpstream, plain_text
from chalicelib.upstream.port import UpstreamPost
from devtools.fake_mastodon import FakeMastodon
from tests.conftest import ADMIN_TOKEN, TABLE
from tests.e2e.test_recovery import drain, run_job, write_outage

pytestmark = pytest.mark.e2e
AUTHORS = [f"user{i}" for i in range(5)]
TOKENS = {f"masto-token-{name}": name for name in AUTHORS}


def fake_mastodon(**options) -> FakeMastodon:
    return FakeMastodon(TOKENS, seed=99, **options)


@pytest.fixture
def mastodon_env(monkeypatch):
    def point_at(server: FakeMastodon) -> None:
        monkeypatch.setenv("UPSTREAM_URL", server.url)
        monkeypatch.setenv("UPSTREAM_KIND", "mastodon")
        monkeypatch.delenv("UPSTREAM_TOKEN", raising=False)
        monkeypatch.setenv("UPSTREAM_TIMEOUT_SECONDS", "1")
        monkeypatch.setenv("REPLAY_MAX_RPS", "400")
        monkeypatch.setenv("REPLAY_SAFETY_MARGIN_SECONDS", "2")
        wiring.reset()

    return point_at


@pytest.fixture
def key(moto):
    upstream_tokens.ensure_key(wiring.kms(), wiring.upstream_settings().token_key_id)


def register_tokens(api, names=AUTHORS) -> None:
    chosen = {token: name for token, name in TOKENS.items() if name in names}
    assert set(chosen.values()) == set(names), "a name without a token would be skipped silently"
    for token, name in chosen.items():
        reply = api.call("PUT", f"/admin/users/{name}/upstream-token", {"token": token}, token=ADMIN_TOKEN)
        assert reply.status == 204, reply.body


def assert_exactly_once_in_order(api, server: FakeMastodon, written: dict[str, list[dict]]) -> None:
    statuses = server.statuses()
    upstream = {(s.author, s.text): s for s in statuses}
    assert len(upstream) == len(statuses), "no post twice upstream"
    expected = [(name, post["text"]) for name, posts in written.items() for post in posts]
    assert expected, "nothing was written: every check below would pass on nothing"
    assert sorted(upstream) == sorted(expected), "every post exactly once, as its own author"
    for name, posts in written.items():
        ids = [int(upstream[(name, post["text"])].id) for post in posts]
        assert ids == sorted(ids), f"{name}'s order"
        for post in posts:
            stored = api.get(f"/posts/{post['id']}").body
            status = upstream[(name, post["text"])]
            assert (stored["state"], stored["upstream_id"]) == ("replayed", status.id)
            if post["in_reply_to"]:
                assert status.in_reply_to_id == api.get(f"/posts/{post['in_reply_to']}").body["upstream_id"]


def test_outage_then_recovery_posts_each_as_its_author_once_in_order(api, key, mastodon_env):
    with fake_mastodon() as server:
        mastodon_env(server)
        server.configure(down=True)
        written = write_outage(api, authors=5, each=4)
        register_tokens(api, names=list(written))
        run_job()
        assert server.statuses() == []

        server.configure(down=False)
        drain()

        assert_exactly_once_in_order(api, server, written)


def test_lost_answers_after_the_idempotency_window_make_no_twins(api, key, mastodon_env):
    # Given a Mastodon that has forgotten every Idempotency-Key (its hour is
    # over) and that loses the answer to half the posts it stores,
    with fake_mastodon(idempotency_seconds=0) as server:
        mastodon_env(server)
        written = write_outage(api, authors=4, each=5)
        register_tokens(api, names=list(written))
        server.configure(lose_answer_rate=0.5, fail_rate=0.1)

        # when the replay resends them,
        drain(max_runs=40)

        # then each landed once: the resends found the earlier attempts.
        assert_exactly_once_in_order(api, server, written)
        stats = server.stats()
        assert stats["lost_answers"] >= 1 and stats["searches"] >= stats["lost_answers"]
        assert stats["idempotent_hits"] == 0


def test_a_user_without_a_token_is_dead_lettered_until_one_is_registered(api, key, mastodon_env):
    with fake_mastodon() as server:
        mastodon_env(server)
        written = write_outage(api, authors=2, each=2, replies=False)
        register_tokens(api, names=["user0"])
        drain()
        letters = api.get("/admin/dead-letters", token=ADMIN_TOKEN).body["dead_letters"]
        assert {post["author"] for post in letters} == {"user1"}

        register_tokens(api, names=["user1"])
        for post in letters:
            assert api.post(f"/admin/dead-letters/{post['id']}/retry", token=ADMIN_TOKEN).status == 200
        drain()

        assert_exactly_once_in_order(api, server, written)


def test_a_key_the_author_reused_on_mastodon_does_not_pass_for_this_post(api, key, mastodon_env):
    with fake_mastodon() as server:
        mastodon_env(server)
        token = api.new_user("user0")
        headers = {"Idempotency-Key": "k-1"}
        mine = api.post("/posts", {"text": "written during the outage"}, token=token, headers=headers).body
        other = server.post_directly("user0", "written on Mastodon", key="k-1")
        register_tokens(api, names=["user0"])

        drain()

        statuses = {status.text: status for status in server.statuses()}
        assert sorted(statuses) == ["written during the outage", "written on Mastodon"]
        assert statuses["written on Mastodon"].id == other
        stored = api.get(f"/posts/{mine['id']}").body
        assert (stored["state"], stored["upstream_id"]) == ("replayed", statuses["written during the outage"].id)


def test_a_post_deleted_after_replay_is_deleted_on_mastodon_as_its_author(api, key, mastodon_env):
    with fake_mastodon() as server:
        mastodon_env(server)
        token = api.new_user("user0")
        kept, gone = (api.post("/posts", {"text": text}, token=token).body for text in ("keep", "delete me"))
        register_tokens(api, names=["user0"])
        drain()
        upstream_id = api.get(f"/posts/{gone['id']}").body["upstream_id"]

        assert api.delete(f"/posts/{gone['id']}", token=token).status == 204
        server.configure(lose_answer_rate=0.5)
        for _ in range(10):
            run_job()
            if wiring.post_store().get_post(gone["id"]).state == "deleted":
                break

        assert [(status.id, status.author) for status in server.deleted()] == [(upstream_id, "user0")]
        assert [status.text for status in server.statuses()] == ["keep"]
        assert api.get(f"/posts/{kept['id']}").body["state"] == "replayed"


def test_tokens_are_encrypted_at_rest_and_never_shown(api, key):
    api.new_user("user0")
    register_tokens(api, names=["user0"])

    item = wiring.dynamodb().get_item(TableName=TABLE, Key=dynamo.key("USER#user0", upstream_tokens.ITEM_SK))["Item"]
    shown = api.get("/admin/users/user0", token=ADMIN_TOKEN)

    assert set(item) == {"PK", "SK", "ciphertext"} and b"masto-token-user0" not in bytes(item["ciphertext"]["B"])
    assert "masto-token" not in repr(shown.body) and "masto-token" not in repr(wiring.upstream_tokens())
    assert wiring.upstream_tokens().get("user0") == "masto-token-user0"
    assert api.call("PUT", "/admin/users/user0/upstream-token", {"token": "two words"}, token=ADMIN_TOKEN).status == 422
    assert api.call("PUT", "/admin/users/user0/upstream-token", {"token": "x"}).status == 401
    assert api.call("PUT", "/admin/users/nobody/upstream-token", {"token": "x"}, token=ADMIN_TOKEN).status == 404


def test_health_is_the_instance_endpoint_and_a_revoked_token_is_permanent():
    with fake_mastodon() as server:
        adapter = MastodonUpstream(server.url, {"user0": "masto-token-user0", "user1": "revoked"}.get)
        assert adapter.check_health()
        server.configure(down=True)
        assert not adapter.check_health()
        server.configure(down=False)

        post = UpstreamPost(id="01J0000000000000000000000A", author="user1", text="hi", created_at="")
        refused = adapter.send(post)

        assert refused.outcome == "permanent" and refused.status == 401 and "revoked" not in refused.detail


def test_mastodon_content_compares_as_the_text_that_was_sent():
    content = '<p>a &amp; b<br />c</p><p>see <a href="https://x.example/long"><span class="invisible">https://</span>x.example/long</a></p>'

    assert plain_text(content) == "a & b c see https://x.example/long"
