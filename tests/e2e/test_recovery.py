"""Outage and recovery against a real primary on loopback (the fake primary
server), with the store on moto: exactly once, in each author's order."""

from __future__ import annotations

import os
from collections import defaultdict

import pytest

from chalicelib import wiring
from chalicelib.recovery.backlog import BacklogStore
from devtools.fake_primary import FakePrimary
from tests.concurrency import run_at_once
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import PRIMARY_TOKEN

pytestmark = pytest.mark.e2e


@pytest.fixture
def upstream_env(monkeypatch, primary):
    monkeypatch.setenv("UPSTREAM_URL", primary.url)
    monkeypatch.setenv("UPSTREAM_TOKEN", PRIMARY_TOKEN)
    monkeypatch.setenv("UPSTREAM_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("REPLAY_MAX_RPS", "400")
    monkeypatch.setenv("REPLAY_SAFETY_MARGIN_SECONDS", "2")
    return primary


@pytest.fixture
def world(upstream_env, api):
    """The API and the primary, with the primary down to start with."""
    wiring.reset()
    upstream_env.configure(down=True)
    return api, upstream_env


def run_job(seconds: float = 30.0):
    return wiring.maintenance().run(lambda: seconds)


def bring_primary_up(primary, runs: int = 3):
    primary.configure(down=False)
    for _ in range(runs):
        report = run_job()
    return report


def drain(max_runs: int = 20):
    """Run the job until the backlog is empty (each run is one schedule tick)."""
    for _ in range(max_runs):
        run_job()
        if wiring.recovery_admin().status()["backlog"] == 0:
            return
    raise AssertionError(f"backlog not drained: {wiring.recovery_admin().status()}")


def write_outage(api, authors: int = 6, each: int = 5, replies: bool = True) -> dict[str, list[dict]]:
    """Posts from several authors, interleaved, with replies across authors."""
    tokens = {f"user{i}": api.new_user(f"user{i}") for i in range(authors)}
    written: dict[str, list[dict]] = defaultdict(list)
    previous = None
    for n in range(each):
        for name, token in tokens.items():
            body = {"text": f"{name} #{n}"}
            if replies and previous is not None and n % 2:
                body["in_reply_to"] = previous["id"]
            reply = api.post("/posts", body, token=token)
            assert reply.status == 201, reply.body
            written[name].append(reply.body)
            previous = reply.body
    return written


def assert_exactly_once_in_order(api, primary: FakePrimary, written: dict[str, list[dict]]):
    received = primary.received()
    ids = [post.id for post in received]
    expected = {post["id"] for posts in written.values() for post in posts}
    assert expected, "nothing was written: every check below would pass on nothing"
    assert sorted(ids) == sorted(expected), "every post exactly once upstream"
    assert primary.stats()["duplicates"] == 0
    for author, posts in written.items():
        assert [p.id for p in received if p.author == author] == [p["id"] for p in posts], f"{author}'s order"
    upstream_of = {post.id: post.upstream_id for post in received}
    for post in received:
        original = next(p for ps in written.values() for p in ps if p["id"] == post.id)
        assert post.created_at == original["created_at"]
        if original["in_reply_to"]:
            assert post.in_reply_to == upstream_of[original["in_reply_to"]]
    for posts in written.values():
        for post in posts:
            stored = api.get(f"/posts/{post['id']}").body
            assert (stored["state"], stored["upstream_id"]) == ("replayed", upstream_of[post["id"]])
    assert api.get("/status").body["backlog"] == 0


def test_outage_then_recovery_delivers_every_post_once_in_order(world):
    api, primary = world
    written = write_outage(api)
    for _ in range(3):
        run_job()
    assert primary.stats()["requests"] == 0, "nothing is sent while the primary is down"
    assert api.get("/status").body["mode"] == "fallback"

    bring_primary_up(primary)

    assert_exactly_once_in_order(api, primary, written)
    status = api.get("/status").body
    assert (status["primary"], status["mode"]) == ("up", "normal")
    assert status["last_replay"]["sent"] == 30 and status["last_replay"]["stopped_because"] == "drained"


def test_flaky_primary_with_failures_lost_answers_and_timeouts(world):
    api, primary = world
    written = write_outage(api, authors=5, each=6)
    primary.configure(fail_rate=0.3, lose_answer_rate=0.15, timeout_rate=0.05, stall_seconds=1.5)
    primary.configure(down=False)
    drain(max_runs=40)
    assert_exactly_once_in_order(api, primary, written)
    stats = primary.stats()
    assert stats["idempotent_hits"] >= 1, "lost answers were resent and recognised by their key"


def test_rate_limited_primary_is_paced_by_retry_after(world, monkeypatch):
    api, primary = world
    written = write_outage(api, authors=8, each=4, replies=False)
    primary.configure(rate_limit=10)
    bring_primary_up(primary)
    drain()
    assert_exactly_once_in_order(api, primary, written)


def test_a_run_cut_short_by_its_deadline_resumes_next_time(world):
    api, primary = world
    written = write_outage(api, authors=4, each=5, replies=False)
    primary.configure(down=False, latency_ms=500)
    for _ in range(2):
        run_job()
    # With 3.5 s left and a 2 s safety margin, a run has 1.5 s to send: room
    # for a first send on a loaded machine, and each author's five posts go one
    # after another, 0.5 s each, so at most three of them fit.
    report = run_job(seconds=3.5)
    replay = report.recovery["replay"]
    assert replay["stopped_because"] == "deadline"
    assert 0 < replay["sent"] < 20
    drain()
    assert_exactly_once_in_order(api, primary, written)


def test_two_runs_at_once_send_each_post_once(world):
    api, primary = world
    written = write_outage(api, authors=6, each=4, replies=False)
    primary.configure(latency_ms=20)
    bring_primary_up(primary, runs=2)
    reports = run_at_once(lambda: wiring.recovery().replay(lambda: 30.0).to_dict(), threads=2)
    drain()

    assert sorted(r["stopped_because"] for r in reports)[1] in {"drained", "lease_held"}
    assert_exactly_once_in_order(api, primary, written)


def test_a_crash_after_the_primary_answered_makes_no_duplicate(world, monkeypatch):
    api, primary = world
    written = write_outage(api, authors=2, each=3, replies=False)
    original = BacklogStore.mark_many_replayed  # the replay's confirms, grouped
    crashed = []

    def crash_once(store, sent, owner, at):
        if not crashed:
            crashed.append(sent[0][0].id)
            raise RuntimeError("the Lambda died between the primary's 201 and our write")
        return original(store, sent, owner, at)

    monkeypatch.setattr(BacklogStore, "mark_many_replayed", crash_once)
    bring_primary_up(primary, runs=2)
    with pytest.raises(RuntimeError, match="Lambda died"):
        run_job()
    assert primary.stats()["accepted"] >= 1
    drain()

    assert_exactly_once_in_order(api, primary, written)
    assert primary.stats()["idempotent_hits"] >= 1


def test_a_dead_lettered_post_does_not_block_its_authors_later_posts(upstream_env, api):
    wiring.reset()
    with FakePrimary(PRIMARY_TOKEN, max_chars=20) as strict:
        upstream_env.configure(down=True)
        token = api.new_user("writer")
        first = api.post("/posts", {"text": "short one"}, token=token).body
        rejected = api.post("/posts", {"text": "this one is far too long for the primary"}, token=token).body
        third = api.post("/posts", {"text": "short two"}, token=token).body
        os.environ["UPSTREAM_URL"] = strict.url  # monkeypatch (upstream_env) restores it
        wiring.reset()
        drain()

        assert [p.id for p in strict.received()] == [first["id"], third["id"]]
        assert api.get(f"/posts/{rejected['id']}").body["state"] == "failed"
        letters = api.get("/admin/dead-letters", token=ADMIN_TOKEN).body["dead_letters"]
        assert [letter["id"] for letter in letters] == [rejected["id"]]
        assert letters[0]["failure_reason"].startswith("HTTP 422")
        assert api.get("/status").body["dead_letters"] == 1

        retried = api.post(f"/admin/dead-letters/{rejected['id']}/retry", token=ADMIN_TOKEN)
        assert (retried.status, retried.body["state"]) == (200, "pending")
        assert api.get("/status").body["backlog"] == 1


def test_a_post_deleted_before_replay_is_never_sent(world):
    api, primary = world
    token = api.new_user("deleter")
    kept = api.post("/posts", {"text": "keep"}, token=token).body
    gone = api.post("/posts", {"text": "delete me"}, token=token).body
    assert api.delete(f"/posts/{gone['id']}", token=token).status == 204

    bring_primary_up(primary)

    assert [p.id for p in primary.received()] == [kept["id"]]


def test_a_primary_failing_mid_replay_opens_the_circuit_and_stops_sending(world):
    api, primary = world
    write_outage(api, authors=4, each=5, replies=False)
    primary.configure(down=False)
    run_job()
    run_job()
    primary.configure(fail_rate=1.0)

    report = run_job()

    assert report.recovery["replay"]["stopped_because"] == "circuit_open"
    assert api.get("/status").body["primary"] == "down"
    sent_so_far = primary.stats()["requests"]
    primary.configure(fail_rate=0.0)
    run_job()
    run_job()
    assert primary.stats()["requests"] == sent_so_far, "no post is sent while the primary is down"


def test_dry_run_lists_the_order_without_sending(world):
    api, primary = world
    written = write_outage(api, authors=3, each=2, replies=False)
    reply = api.post("/admin/replay?dry_run=true", token=ADMIN_TOKEN)
    assert reply.status == 200
    planned = [item["id"] for item in reply.body["would_send"]]
    assert sorted(planned) == sorted(p["id"] for ps in written.values() for p in ps)
    for posts in written.values():
        positions = [planned.index(p["id"]) for p in posts]
        assert positions == sorted(positions)
    assert primary.stats()["requests"] == 0


def test_admin_replay_runs_now_only_when_the_primary_is_up(world):
    api, primary = world
    write_outage(api, authors=2, each=2, replies=False)
    down = api.post("/admin/replay", token=ADMIN_TOKEN).body
    assert (down["sent"], down["stopped_because"]) == (0, "primary_not_up")
    primary.configure(down=False)
    api.post("/admin/replay", token=ADMIN_TOKEN)
    api.post("/admin/replay", token=ADMIN_TOKEN)
    now = api.post("/admin/replay", token=ADMIN_TOKEN).body
    assert (now["primary"], now["sent"], now["stopped_because"]) == ("up", 4, "drained")
    assert api.post("/admin/replay", token="nope").status == 401


def test_a_refused_token_stops_the_replay_and_dead_letters_nothing(world, monkeypatch):
    api, primary = world
    written = write_outage(api, authors=3, each=2, replies=False)
    monkeypatch.setenv("UPSTREAM_TOKEN", "a-token-the-primary-does-not-know")
    wiring.reset()

    report = bring_primary_up(primary)

    assert report.recovery["replay"]["stopped_because"] == "upstream_unauthorized"
    status = api.get("/status").body
    assert (status["backlog"], status["dead_letters"]) == (6, 0)
    assert primary.received() == []

    # Once the operator fixes the token, the backlog drains as usual.
    monkeypatch.setenv("UPSTREAM_TOKEN", PRIMARY_TOKEN)
    wiring.reset()
    drain()
    assert_exactly_once_in_order(api, primary, written)


def test_spooled_posts_folded_over_many_runs_keep_their_authors_order(world, monkeypatch, outage):
    # Given a fold that takes 2 spooled posts a run, a primary that is up,
    api, primary = world
    monkeypatch.setenv("SPOOL_FOLD_BATCH", "2")
    wiring.reset()
    bring_primary_up(primary)
    # and one author whose 10 spooled posts alternate with 10 stored in the table,
    token = api.new_user("writer")
    written = []
    for n in range(10):
        written.append(api.post("/posts", {"text": f"table {n}"}, token=token).body)
        outage.throttled(wiring.dynamodb(), "PutItem")
        spooled = api.post("/posts", {"text": f"spooled {n}"}, token=token)
        outage.end()
        assert spooled.status == 202
        written.append(spooled.body)

    # when the scheduled job runs until the backlog is empty,
    first = run_job()

    # then nothing goes while older posts wait in the spool,
    assert (first.folded, first.recovery["replay"]["stopped_because"]) == (2, "spool_not_empty")
    assert primary.received() == []
    drain()
    # and the author's posts reach the primary once each, in the order written.
    assert_exactly_once_in_order(api, primary, {"writer": written})


def test_an_author_folded_in_this_run_waits_for_the_next_run(world, outage):
    # Given a primary that is up, bob's post in the table, and alice's in the spool,
    api, primary = world
    bring_primary_up(primary)
    alice, bob = api.new_user("alice"), api.new_user("bob")
    outage.throttled(wiring.dynamodb(), "PutItem")
    spooled = api.post("/posts", {"text": "alice, spooled"}, token=alice).body
    outage.end()
    stored = api.post("/posts", {"text": "bob, stored"}, token=bob).body

    # when one run folds alice's post and replays,
    report = run_job()

    # then only bob's post goes: alice's folded post may not be in the
    # Backlog index yet, so her lane waits a run.
    assert report.folded == 1
    assert [p.id for p in primary.received()] == [stored["id"]]
    assert report.recovery["replay"]["stopped_because"] == "folded_authors_wait"
    run_job()
    assert [p.id for p in primary.received()] == [stored["id"], spooled["id"]]


def test_a_key_the_author_reused_on_the_primary_does_not_pass_for_this_post(world):
    # Given a post made here under a key the author also used on the primary
    # itself, for another post,
    api, primary = world
    token = api.new_user("reuser")
    mine = api.post("/posts", {"text": "written during the outage"}, token=token, headers={"Idempotency-Key": "k-1"})
    other = primary.add_direct_post("reuser", "written on the primary", key="k-1")

    # when the backlog is replayed,
    bring_primary_up(primary)

    # then this post reached the primary, and its upstream id is its own.
    [received] = primary.received()
    assert (received.id, received.text) == (mine.body["id"], "written during the outage")
    stored = api.get(f"/posts/{mine.body['id']}").body
    assert (stored["state"], stored["upstream_id"]) == ("replayed", received.upstream_id)
    assert received.upstream_id != other


# -- deletes after replay ---------------------------------------------------------


def stored(post_id: str):
    return wiring.post_store().get_post(post_id)


def replayed_posts(api, primary, texts=("keep", "delete me")) -> tuple[str, list[dict]]:
    token = api.new_user("deleter")
    posts = [api.post("/posts", {"text": text}, token=token).body for text in texts]
    bring_primary_up(primary)
    assert [stored(post["id"]).state for post in posts] == ["replayed"] * len(posts)
    return token, posts


def test_a_post_deleted_after_replay_is_deleted_on_the_primary_once(world):
    # Given two posts replayed to the primary,
    api, primary = world
    token, (kept, gone) = replayed_posts(api, primary)

    # when the author deletes one here,
    assert api.delete(f"/posts/{gone['id']}", token=token).status == 204

    # then readers no longer see it, and the delete waits for the replay;
    assert api.get(f"/posts/{gone['id']}").status == 404
    assert api.delete(f"/posts/{gone['id']}", token=token).status == 404
    assert stored(gone["id"]).state == "delete_pending"
    status = api.get("/status").body
    assert (status["backlog"], status["upstream_deletes"], status["mode"]) == (0, 1, "recovering")
    report = run_job()
    # the next run deletes the primary's copy, and only that one;
    assert report.recovery["replay"]["deleted"] == 1
    upstream_id = stored(gone["id"]).upstream_id
    assert [(copy.upstream_id, copy.id) for copy in primary.deleted()] == [(upstream_id, gone["id"])]
    done = stored(gone["id"])
    assert (done.state, done.upstream_deleted_at is not None) == ("deleted", True)
    status = api.get("/status").body
    assert (status["upstream_deletes"], status["mode"]) == (0, "normal")
    # and later runs send it no more.
    run_job()
    assert primary.stats()["delete_requests"] == 1
    assert stored(kept["id"]).state == "replayed"


def test_a_delete_made_while_the_primary_is_down_waits_and_survives_lost_answers(world):
    api, primary = world
    token, (_, gone) = replayed_posts(api, primary)
    primary.configure(down=True)
    run_job()
    run_job()
    assert api.delete(f"/posts/{gone['id']}", token=token).status == 204
    run_job()
    assert primary.deleted() == [], "nothing is sent while the primary is down"

    # The primary comes back (two good checks, the third makes it up) and
    # deletes the copy, but every answer of that run (0.6 s to send) is lost;
    primary.configure(down=False)
    run_job()
    run_job()
    primary.configure(lose_answer_rate=1.0)
    cut_short = run_job(seconds=2.6).recovery["replay"]
    assert (cut_short["deleted"], cut_short["retries"] >= 1) == (0, True)
    assert stored(gone["id"]).state == "deleting"
    # the next run repeats the delete, finds the copy gone, and is done.
    primary.configure(lose_answer_rate=0.0)
    assert run_job().recovery["replay"]["deleted"] == 1

    assert [copy.id for copy in primary.deleted()] == [gone["id"]]
    assert stored(gone["id"]).state == "deleted"
    assert primary.stats()["lost_answers"] >= 1


def test_a_delete_the_primary_refuses_is_a_dead_letter_the_admin_can_retry(world):
    api, primary = world
    token, (_, gone) = replayed_posts(api, primary)
    primary.configure(force_status=403, force_body='{"error": "not allowed"}')
    api.delete(f"/posts/{gone['id']}", token=token)

    run_job()

    letters = api.get("/admin/dead-letters", token=ADMIN_TOKEN).body["dead_letters"]
    assert [(letter["id"], letter["state"]) for letter in letters] == [(gone["id"], "delete_failed")]
    assert letters[0]["failure_reason"] == 'HTTP 403: {"error": "not allowed"}'
    assert api.get("/status").body["dead_letters"] == 1
    assert api.get(f"/posts/{gone['id']}").status == 404, "still deleted here"

    primary.configure(force_status=None, force_body=None)
    retried = api.post(f"/admin/dead-letters/{gone['id']}/retry", token=ADMIN_TOKEN)
    assert (retried.status, retried.body["state"]) == (200, "delete_pending")
    run_job()
    assert [copy.id for copy in primary.deleted()] == [gone["id"]]
    assert api.get("/status").body["dead_letters"] == 0


def test_a_reply_waiting_for_its_parent_goes_top_level_once_the_parent_is_deleted(world):
    api, primary = world
    token, (parent, _) = replayed_posts(api, primary)
    other = api.new_user("replier")
    primary.configure(down=True)
    run_job()
    run_job()
    reply = api.post("/posts", {"text": "a reply", "in_reply_to": parent["id"]}, token=other).body
    api.delete(f"/posts/{parent['id']}", token=token)

    bring_primary_up(primary, runs=3)
    drain()

    sent = next(post for post in primary.received() if post.id == reply["id"])
    assert sent.in_reply_to is None
    assert [copy.id for copy in primary.deleted()] == [parent["id"]]
