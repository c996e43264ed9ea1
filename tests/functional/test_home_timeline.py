"""Home timelines fanned out on write, through the Mastodon API on moto with
the table's stream delivered to the real consumer: posts reach followers,
deletes leave every home, follows backfill and unfollows trim, very
followed accounts are merged at read, homes are trimmed, and a page costs
two requests however many accounts the reader follows."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from chalicelib import wiring
from chalicelib.home.fanout import HomeFanout
from chalicelib.stream.consumer import StreamConsumer
from tests.conftest import ADMIN_TOKEN, stream_lagging
from tests.functional.test_mirrored_feeds import PrimaryFeed

HOME = "/api/v1/timelines/home"


def status_texts(api, token: str, query: str = "") -> list[str]:
    reply = api.get(HOME + query, token=token)
    assert reply.status == 200, reply.body
    return [status["content"] for status in reply.body]


def entries(owner: str) -> list[str]:
    return [entry.post_id for entry in wiring.home_store().all_entries(owner)]


class People:
    def __init__(self, api, *names: str) -> None:
        self.api = api
        self.tokens = {name: api.new_user(name) for name in names}

    def post(self, name: str, text: str) -> str:
        reply = self.api.post("/posts", {"text": text}, token=self.tokens[name])
        assert reply.status == 201, reply.body
        return reply.body["id"]

    def follow(self, follower: str, followee: str, undo: bool = False) -> None:
        verb = "unfollow" if undo else "follow"
        assert self.api.post(f"/api/v1/accounts/{followee}/{verb}", token=self.tokens[follower]).status == 200

    def home(self, name: str, query: str = "") -> list[str]:
        return status_texts(self.api, self.tokens[name], query)


def with_settings(**changes: int) -> None:
    """Settings changed from here on (the Chalice test client puts the
    stage's environment back on every request): everything built afresh,
    still inside moto."""
    wiring.reset()
    wiring.override(settings=dataclasses.replace(wiring.settings(), **changes))


def test_a_post_reaches_its_author_and_followers_homes_and_a_delete_leaves_every_one(api):
    people = People(api, "alice", "bob", "carol", "dora")
    people.follow("bob", "alice")
    people.follow("carol", "alice")
    kept = people.post("alice", "kept")
    gone = people.post("alice", "gone")

    for name in ("alice", "bob", "carol"):
        assert people.home(name) == ["<p>gone</p>", "<p>kept</p>"]
    assert people.home("dora") == []

    assert api.delete(f"/posts/{gone}", token=people.tokens["alice"]).status == 204
    for name in ("alice", "bob", "carol"):
        assert people.home(name) == ["<p>kept</p>"]
        assert entries(name) == [kept]


def test_a_follow_backfills_and_an_unfollow_takes_the_followees_posts_out(api):
    people = People(api, "alice", "bob")
    posts = [people.post("alice", f"alice {n}") for n in range(3)]
    own = people.post("bob", "bob own")

    people.follow("bob", "alice")
    assert people.home("bob") == ["<p>bob own</p>", "<p>alice 2</p>", "<p>alice 1</p>", "<p>alice 0</p>"]
    assert set(entries("bob")) == {own, *posts}

    people.follow("bob", "alice", undo=True)
    assert people.home("bob") == ["<p>bob own</p>"]
    assert entries("bob") == [own]


def test_a_follow_shows_in_the_followers_home_before_the_stream_has_backfilled_it(api):
    people = People(api, "alice", "bob")
    for n in range(3):
        people.post("alice", f"alice {n}")
    own = people.post("bob", "bob own")

    with stream_lagging():
        people.follow("bob", "alice")
        assert entries("bob") == [own]  # nothing backfilled yet
        followed = people.home("bob")

    assert followed == ["<p>bob own</p>", "<p>alice 2</p>", "<p>alice 1</p>", "<p>alice 0</p>"]
    assert len(entries("bob")) == 4
    # Settled: the page is back to its one query of fanned-out entries.
    assert wiring.home_store().page_items("bob", []).backfilling == frozenset()
    assert people.home("bob") == followed


def test_an_unfollow_leaves_the_followers_home_before_the_stream_has_removed_the_entries(api):
    people = People(api, "alice", "bob")
    people.post("alice", "alice 0")
    own = people.post("bob", "bob own")
    people.follow("bob", "alice")

    with stream_lagging():
        people.follow("bob", "alice", undo=True)
        assert len(entries("bob")) == 2  # not removed yet
        unfollowed = people.home("bob")
        people.follow("bob", "alice")  # and back: shown again at once
        refollowed = people.home("bob")

    assert unfollowed == ["<p>bob own</p>"]
    assert refollowed == ["<p>bob own</p>", "<p>alice 0</p>"]
    assert people.home("bob") == refollowed
    settled = wiring.home_store().page_items("bob", [])
    assert (settled.backfilling, settled.unfollowing) == (frozenset(), frozenset())
    assert len(entries("bob")) == 2 and own in entries("bob")


def test_an_account_past_the_follower_cap_is_merged_at_read(api):
    with_settings(fanout_max_followers=1)
    people = People(api, "star", "bob", "carol", "dora")
    early = people.post("star", "before the cap")
    people.follow("bob", "star")
    people.follow("carol", "star")  # the second follower: past the cap
    late = people.post("star", "after the cap")
    people.post("dora", "dora own")
    people.follow("bob", "dora")

    for name in ("bob", "carol", "star"):
        assert late not in entries(name)  # not fanned out
    assert early in entries("bob")  # backfilled before the cap, and not shown twice
    assert people.home("bob") == ["<p>dora own</p>", "<p>after the cap</p>", "<p>before the cap</p>"]
    assert people.home("carol") == ["<p>after the cap</p>", "<p>before the cap</p>"]
    assert people.home("star") == ["<p>after the cap</p>", "<p>before the cap</p>"]
    assert people.home("bob", "?limit=1") == ["<p>dora own</p>"]

    people.follow("carol", "star", undo=True)
    assert people.home("carol") == []


def test_a_home_keeps_only_its_newest_items(api):
    with_settings(home_max_items=3)
    people = People(api, "alice", "bob")
    posts = [people.post("alice", f"alice {n}") for n in range(5)]
    people.follow("bob", "alice")
    assert entries("bob") == posts[:1:-1]  # the backfill is trimmed at once

    # A fan-out trims about one home in TRIM_EVERY; here every one.
    configured = wiring.settings()
    trimming = HomeFanout(wiring.home_store(), configured.fanout_max_followers, configured.home_max_items, 1)
    wiring.override(stream_consumer=StreamConsumer(wiring.stream_store(), trimming, public=wiring.post_store()))
    newer = [people.post("alice", f"newer {n}") for n in range(2)]
    assert entries("bob") == [newer[1], newer[0], posts[4]]
    assert entries("alice") == [newer[1], newer[0], posts[4]]


class Counting:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model, **_) -> None:
        self.calls[model.name] += 1


def test_a_home_page_costs_two_requests_following_200_accounts(api):
    reader = api.new_user("reader")
    names = [f"followed{n:03d}" for n in range(200)]
    for name in names:
        token = api.new_user(name)
        assert api.post("/posts", {"text": f"{name} says hi"}, token=token).status == 201
    export = "Account address,Show boosts,Notify on new posts,Languages\n" + "".join(
        f"{name},true,false,\n" for name in names
    )
    imported = api.call(
        "POST", "/admin/users/reader/following", token=ADMIN_TOKEN, raw=export, headers={"Content-Type": "text/csv"}
    )
    assert imported.body["followed"] == 200, imported.body
    assert len(status_texts(api, reader)) == 20  # the token cache warm, the stream delivered

    counting = Counting()
    wiring.dynamodb().meta.events.register("before-parameter-build.dynamodb", counting)
    shown = status_texts(api, reader)
    assert len(set(shown)) == 20  # twenty authors, one post each

    # The page: 1 Query of HOME#reader, 1 BatchGetItem of its posts. Rendering
    # the Account entities adds 1 BatchGetItem of their user items and 1 of
    # their follow counts (pattern 24, as for every timeline).
    assert counting.calls == Counter({"Query": 1, "BatchGetItem": 3}), counting.calls


@pytest.mark.parametrize("direction", ["max_id", "min_id"])
def test_home_pages_in_both_directions_see_every_post_once(api, direction):
    people = People(api, "alice", "bob")
    people.follow("bob", "alice")
    texts = [f"alice {n}" for n in range(5)]
    for text in texts:
        people.post("alice", text)
    seen, query = [], "?limit=2" + ("&min_id=0" if direction == "min_id" else "")
    for _ in range(5):
        statuses = api.get(HOME + query, token=people.tokens["bob"]).body
        if not statuses:
            break
        seen += [status["content"] for status in statuses]
        edge = statuses[-1 if direction == "max_id" else 0]["id"]
        query = f"?limit=2&{direction}={edge}"
    expected = [f"<p>{text}</p>" for text in texts]
    assert seen == (
        expected[::-1]
        if direction == "max_id"
        else ["<p>alice 1</p>", "<p>alice 0</p>", "<p>alice 3</p>", "<p>alice 2</p>", "<p>alice 4</p>"]
    )


def test_home_pages_neither_skip_nor_repeat_while_posts_keep_arriving(api):
    people = People(api, "alice", "bob", "carol")
    people.follow("bob", "alice")
    people.follow("bob", "carol")
    before = [f"<p>{name} {n}</p>" for n in range(6) for name in ("alice", "carol")]
    for n in range(6):
        for name in ("alice", "carol"):
            people.post(name, f"{name} {n}")
    seen, query = [], "?limit=4"
    while True:
        statuses = api.get(HOME + query, token=people.tokens["bob"]).body
        seen += [status["content"] for status in statuses]
        people.post("alice", "during")
        people.post("bob", "during")
        if not statuses:
            break
        query = f"?limit=4&max_id={statuses[-1]['id']}"
    assert seen == before[::-1]


def test_mirrored_posts_reach_their_authors_followers_and_leave_with_the_primarys_delete(api, monkeypatch):
    monkeypatch.setenv("MIRROR_ENABLED", "true")
    primary = PrimaryFeed()
    primary.account("bob")
    primary.run()
    people = People(api, "alice")
    people.follow("alice", "bob")
    mirrored = primary.post("p1", "bob", "2026-01-01T01:00:00.000Z")
    primary.run()

    assert people.home("alice") == ["<p>p1 by bob</p>"]
    assert [entry.mirrored for entry in wiring.home_store().all_entries("alice")] == [True]
    assert entries("bob") == [mirrored]

    primary.post("p1", "bob", "2026-01-01T01:00:00.000Z", deleted=True)
    primary.run()
    assert people.home("alice") == []
    assert entries("alice") == entries("bob") == []
