"""An account the primary suspends can't sign in, and its posts (mirrored
and written here in the outage) leave every timeline, feed and read by id:
native, Mastodon and feeds. Lifting the suspension brings them back."""

from __future__ import annotations

import hashlib

import feedparser
import pytest

from chalicelib import wiring
from tests.conftest import ADMIN_TOKEN
from tests.functional.test_feed_publishing import run_job, static_ids, static_keys
from tests.functional.test_feeds_api import fetch
from tests.functional.test_mirrored_feeds import PrimaryFeed

BOB_PRIMARY_TOKEN = "bob-token-issued-by-the-primary"


@pytest.fixture(autouse=True)
def mirroring(monkeypatch):
    monkeypatch.setenv("MIRROR_ENABLED", "true")
    # Every request reads its token afresh, as a container that has not
    # seen it would (a cached token lasts AUTH_CACHE_SECONDS: DESIGN.md).
    monkeypatch.setenv("AUTH_CACHE_SECONDS", "0")


class World:
    """alice (Lifeboat's own) follows bob (mirrored, with posts mirrored and
    written in the outage, a primary token and an admin-issued one)."""

    def __init__(self, api) -> None:
        self.api = api
        self.primary = PrimaryFeed()
        self.primary.account("bob")
        self.primary.feed.changes.append(
            {
                "type": "credential",
                "username": "bob",
                "token_sha256": hashlib.sha256(BOB_PRIMARY_TOKEN.encode()).hexdigest(),
                "scopes": "read write follow",
                "revoked": False,
            }
        )
        self.bob_mirrored = [self.primary.post(f"p{n}", "bob", f"2026-01-01T0{n}:00:00.000Z") for n in range(3)]
        self.primary.run()
        self.alice = api.new_user("alice")
        self.alices = [self.post(self.alice, f"alice {n}") for n in range(3)]
        self.bob_outage = self.post(BOB_PRIMARY_TOKEN, "bob in the outage")
        self.bob_lifeboat_token = api.post("/admin/users/bob/token", token=ADMIN_TOKEN).body["token"]
        assert api.post("/api/v1/accounts/bob/follow", token=self.alice).status == 200

    def post(self, token: str, text: str) -> str:
        reply = self.api.post("/posts", {"text": text}, token=token)
        assert reply.status == 201, reply.body
        return reply.body["id"]

    @property
    def bobs(self) -> set[str]:
        return {*self.bob_mirrored, self.bob_outage}

    def suspend(self, suspended: bool = True) -> None:
        self.primary.account("bob", suspended=suspended)
        self.primary.run()


@pytest.fixture
def world(api):
    return World(api)


def native_ids(body) -> list[str]:
    return [post["id"] for post in body["posts"]]


def mastodon_contents(statuses) -> list[str]:
    return [status["content"] for status in statuses]


def feed_ids(body: str) -> list[str]:
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0
    return [entry.id.rsplit(":", 1)[1] for entry in parsed.entries]


def test_before_the_suspension_bob_is_everywhere(api, world):
    assert world.bobs <= set(native_ids(api.get("/timeline/public").body))
    assert len(api.get("/api/v1/timelines/home", token=world.alice).body) == 7


def test_a_suspended_account_cannot_sign_in_with_any_token(api, world):
    assert api.get("/api/v1/accounts/verify_credentials", token=world.bob_lifeboat_token).status == 200
    world.suspend()
    for token in (BOB_PRIMARY_TOKEN, world.bob_lifeboat_token):
        assert api.get("/api/v1/accounts/verify_credentials", token=token).status == 401
        assert api.post("/posts", {"text": "still here?"}, token=token).status == 401


def test_a_suspended_accounts_posts_leave_the_native_api(api, world):
    world.suspend()
    public = native_ids(api.get("/timeline/public").body)
    assert public == list(reversed(world.alices))
    assert api.get("/users/bob/posts").status == 404
    assert api.get("/users/bob/posts").body["error"] == "account_suspended"
    for post_id in world.bobs:
        assert api.get(f"/posts/{post_id}").status == 404


def test_a_suspended_accounts_statuses_leave_the_mastodon_api(api, world):
    statuses = api.get("/api/v1/timelines/public").body
    bobs_status = next(status["id"] for status in statuses if status["account"]["id"] == "bob")
    world.suspend()

    assert mastodon_contents(api.get("/api/v1/timelines/public").body) == [
        "<p>alice 2</p>",
        "<p>alice 1</p>",
        "<p>alice 0</p>",
    ]
    home = api.get("/api/v1/timelines/home", token=world.alice).body
    assert {status["account"]["id"] for status in home} == {"alice"}
    assert api.get(f"/api/v1/statuses/{bobs_status}").status == 404
    assert api.get("/api/v1/accounts/bob/statuses").body == []
    account = api.get("/api/v1/accounts/bob").body
    assert account["suspended"] is True


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_a_suspended_accounts_posts_leave_the_live_feeds(api, world, kind):
    world.suspend()
    status, _, body = fetch(api, f"/timeline/public/feed.{kind}")
    assert status == 200 and feed_ids(body) == list(reversed(world.alices))
    assert fetch(api, f"/users/bob/feed.{kind}")[0] == 404


def test_a_feed_fetched_before_the_suspension_is_not_304_after_it(api, world):
    _, headers, _ = fetch(api, "/timeline/public/feed.atom")
    world.suspend()
    status, _, body = fetch(api, "/timeline/public/feed.atom", {"If-None-Match": headers["ETag"]})
    assert status == 200 and not world.bobs & set(feed_ids(body))


def test_a_suspended_accounts_static_feeds_are_gone_and_the_public_one_drops_its_posts(api, world):
    run_job()
    assert world.bobs <= set(static_ids("feeds/public.atom"))
    assert "feeds/users/bob.rss" in static_keys()

    world.suspend()
    world.primary.post("p9", "bob", "2026-01-01T09:00:00.000Z")  # the author is a publish candidate
    world.primary.run()
    run_job()

    assert static_ids("feeds/public.atom") == list(reversed(world.alices))
    assert {"feeds/users/bob.rss", "feeds/users/bob.atom"} & static_keys() == set()


def test_a_page_without_the_suspended_accounts_posts_is_still_full(api, world):
    for n in range(4):
        world.bob_outage = world.post(world.bob_lifeboat_token, f"bob again {n}")
    world.suspend()

    first = api.get("/timeline/public?limit=2").body
    assert native_ids(first) == [world.alices[2], world.alices[1]]
    second = api.get(f"/timeline/public?limit=2&cursor={first['next_cursor']}").body
    assert native_ids(second) == [world.alices[0]]
    statuses = api.get("/api/v1/timelines/public?limit=2").body
    assert mastodon_contents(statuses) == ["<p>alice 2</p>", "<p>alice 1</p>"]


def test_lifting_the_suspension_brings_everything_back(api, world):
    world.suspend()
    world.suspend(False)
    assert world.bobs <= set(native_ids(api.get("/timeline/public").body))
    assert api.get("/users/bob/posts").status == 200
    assert api.get(f"/posts/{world.bob_outage}").status == 200
    assert len(api.get("/api/v1/timelines/home", token=world.alice).body) == 7
    assert fetch(api, "/users/bob/feed.rss")[0] == 200
    assert api.get("/api/v1/accounts/verify_credentials", token=BOB_PRIMARY_TOKEN).status == 200


def test_a_stack_that_does_not_mirror_reads_no_author_for_a_page(api, monkeypatch):
    monkeypatch.setenv("MIRROR_ENABLED", "false")
    wiring.reset()
    token = api.new_user("alice")
    api.post("/posts", {"text": "hello"}, token=token)
    api.get("/status")  # the stream has applied the post: its writes are done
    calls: list[tuple[str, dict]] = []
    wiring.dynamodb().meta.events.register(
        "before-parameter-build.dynamodb", lambda model, params, **_: calls.append((model.name, params))
    )
    assert len(api.get("/timeline/public").body["posts"]) == 1
    # The public chunks' query, and the posts it names: no user item.
    assert [name for name, _ in calls] == ["Query", "BatchGetItem"]
    read_keys = [key["PK"]["S"] for keys in calls[1][1]["RequestItems"].values() for key in keys["Keys"]]
    assert len(read_keys) == 1 and read_keys[0].startswith("POST#")
