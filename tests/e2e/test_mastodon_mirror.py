"""The mirror of a Mastodon primary, end to end: the fake Mastodon as a real
server on loopback, and the local stack (./scripts/run) with
UPSTREAM_KIND=mastodon and MIRROR_ENABLED mirroring it on its schedule.

The primary's tokens and password hashes never come through Mastodon's API
(they come from scripts/mastodon_export.sql through the S3 inbox); here the
test writes them through the `MirrorStore`, on the stack's own moto, as
the inbox would."""

from __future__ import annotations

import hashlib
import urllib.request

import pytest

from chalicelib.mastodon.follows import FollowStore
from chalicelib.mirror.changes import AccountChange, CredentialChange
from chalicelib.mirror.store import MirrorStore
from devtools.fake_mastodon import FakeMastodon, Fault
from devtools.local_stack import stage_environment
from tests.e2e.stack import start_stack, wait_for

pytestmark = pytest.mark.e2e

ADMIN = "admin-token-of-the-mirror"
LOCALS = ["alice", "bob", "carol", "dave", "erin"]
POSTS = 30
# alice follows bob, carol and a remote account (never mirrored).
FOLLOWS = {"alice": ["bob", "carol", "far@remote.example"], "bob": ["alice"], "carol": ["dave"]}
BCRYPT = "$2b$12$" + "c" * 53
STAGE = stage_environment("local")


def seed(server: FakeMastodon) -> dict[str, list[str]]:
    """Five local accounts and a remote one, the follows above, and POSTS
    public posts round the locals; plus posts the mirror must not take (an
    unlisted one, a reply to another account). Each author's texts."""
    for name in LOCALS:
        server.add_account(name, display_name=name.title())
    server.add_account("far@remote.example")
    for follower, followees in FOLLOWS.items():
        for followee in followees:
            server.add_follow(follower, followee)
    texts: dict[str, list[str]] = {name: [] for name in LOCALS}
    first = None
    for n in range(POSTS):
        author = LOCALS[n % len(LOCALS)]
        texts[author].append(f"post {n} by {author}")
        status_id = server.add_status(author, texts[author][-1])
        first = first or status_id
    server.add_status("alice", "unlisted, not mirrored", visibility="unlisted")
    server.add_status("dave", "a reply to alice, not in the public timeline", in_reply_to_id=first)
    server.add_status("far@remote.example", "remote, not mirrored")
    return texts


def stack_env(server: FakeMastodon) -> dict[str, str]:
    return {
        "UPSTREAM_URL": server.url,
        "UPSTREAM_KIND": "mastodon",
        "UPSTREAM_TOKEN": ADMIN,
        "UPSTREAM_TIMEOUT_SECONDS": "2",
        "MIRROR_ENABLED": "true",
        # The fake's posts are committed when made: none needs to settle.
        "MIRROR_POSTS_SETTLE_SECONDS": "0",
        # A crawl (suspensions, display names, follows) every few seconds.
        "MIRROR_CRAWL_EVERY_SECONDS": "3",
        "AUTH_CACHE_SECONDS": "1",
    }


@pytest.fixture
def mastodon():
    with FakeMastodon({}, admin_tokens={ADMIN: "read admin:read:accounts"}) as server:
        yield server


@pytest.fixture
def running():
    """Starts the stack against a server, and stops it after the test."""
    started = []

    def start(server: FakeMastodon):
        started.append(start_stack(stack_env(server)))
        return started[-1]

    yield start
    for stack in started:
        stack.stop()


def mirror_status(stack) -> dict:
    reply = stack.call("GET", "/status")
    assert reply.status == 200, reply.body
    return reply.body


def mirrored(stack, accounts: int, posts: int) -> dict | None:
    """The mirror's status once it has reached the feed's end with these counts."""
    status = mirror_status(stack)["mirror"]
    done = status["cursor_at"] is not None and (status["accounts"], status["posts"]) == (accounts, posts)
    return status if done else None


def mirror_store(stack) -> MirrorStore:
    """The stack's own MirrorStore, on its moto: how the S3 inbox writes."""
    dynamodb, table = stack.aws_client("dynamodb"), STAGE["TABLE_NAME"]
    follows = FollowStore(dynamodb, table, max_following=5000)
    key = "alias/lifeboat-upstream-tokens"
    return MirrorStore(dynamodb, stack.aws_client("kms"), table, key, follows, int(STAGE["WRITE_SHARDS"]))


def give_token(store: MirrorStore, username: str) -> str:
    token = f"{username}-app-token"
    digest = hashlib.sha256(token.encode()).hexdigest()
    store.apply_credentials([CredentialChange(username, digest, frozenset({"read", "write", "follow"}), False)])
    return token


def texts_of(statuses: list[dict]) -> list[str]:
    return sorted(status["content"].removeprefix("<p>").removesuffix("</p>") for status in statuses)


def test_a_mastodon_primary_is_mirrored_and_its_users_are_served(mastodon, running):
    texts = seed(mastodon)
    stack = running(mastodon)

    status = wait_for(lambda: mirrored(stack, len(LOCALS), POSTS), timeout=60)
    assert status["last_error"] is None

    # A mirrored account is a user of the native API, the Mastodon API and the feeds.
    native = stack.call("GET", "/users/bob/posts?limit=100").body["posts"]
    assert sorted(post["text"] for post in native) == sorted(texts["bob"])
    assert {post["state"] for post in native} == {"mirrored"}
    bob = stack.call("GET", "/api/v1/accounts/lookup?acct=bob")
    assert (bob.status, bob.body["username"]) == (200, "bob")
    statuses = stack.call("GET", f"/api/v1/accounts/{bob.body['id']}/statuses?limit=40").body
    assert texts_of(statuses) == sorted(texts["bob"])
    with urllib.request.urlopen(f"{stack.base_url}/users/bob/feed.atom", timeout=10) as feed:
        atom = feed.read().decode()
    assert all(text in atom for text in texts["bob"])

    # The follow graph: local followees only.
    alice = stack.call("GET", "/api/v1/accounts/lookup?acct=alice").body
    following = stack.call("GET", f"/api/v1/accounts/{alice['id']}/following").body
    assert sorted(account["username"] for account in following) == ["bob", "carol"]

    # Tokens come from the export (the inbox), never from the API.
    store = mirror_store(stack)
    assert store.account("bob").display_name == "Bob"
    alice_token, carol_token = give_token(store, "alice"), give_token(store, "carol")
    # Home timelines are fanned out on the stream, which lags the mirror's writes by a moment.
    expected = sorted(texts["alice"] + texts["bob"] + texts["carol"])

    def home_texts() -> list[str]:
        home = stack.call("GET", "/api/v1/timelines/home?limit=40", token=alice_token)
        assert home.status == 200
        return texts_of(home.body)

    wait_for(lambda: home_texts() == expected, timeout=10)

    # The export's password hash, then a crawl that re-reads alice from the
    # API (her new name shows it did): the API's account keeps the hash.
    store.apply_account(AccountChange("alice", "Alice", store.account("alice").created_at, False, BCRYPT))
    assert store.account("alice").has_password
    mastodon.rename("alice", "Alice Renamed")
    mastodon.suspend("carol")
    assert stack.call("GET", "/api/v1/accounts/verify_credentials", token=carol_token).status == 200

    def crawled() -> bool:
        renamed = store.account("alice").display_name == "Alice Renamed"
        refused = stack.call("GET", "/api/v1/accounts/verify_credentials", token=carol_token).status == 401
        return renamed and refused

    wait_for(crawled, timeout=60)
    assert store.account("alice").has_password
    assert store.account("carol").suspended
    assert stack.call("GET", "/api/v1/accounts/verify_credentials", token=alice_token).status == 200


def test_a_failing_primary_leaves_the_mirror_complete_with_nothing_twice(mastodon, running):
    texts = seed(mastodon)
    # Down from the start: the mirror waits for the primary to be up.
    mastodon.configure(down=True)
    stack = running(mastodon)
    wait_for(lambda: mirror_status(stack)["primary"] == "down", timeout=60)
    assert mirror_status(stack)["mirror"]["cursor_at"] is None

    timeline, accounts, following = "/api/v1/timelines/public", "/api/v2/admin/accounts", "/api/v1/accounts/"
    mastodon.fail_next(
        Fault(accounts, 500),
        Fault(timeline, hang_up=True),  # a page dies half-way, after the new accounts
        Fault(timeline, 429, retry_after="1"),
        Fault(timeline, 503),
        Fault(following, hang_up=True),  # part-way through the crawl
        Fault(following, 500),
    )
    mastodon.configure(down=False)

    status = wait_for(lambda: mirrored(stack, len(LOCALS), POSTS), timeout=90)

    assert mastodon.faults_left() == 0
    assert status["last_error"] is None
    # Every post once: the count adds each stored post change, so a page
    # read twice would show here, and each author has exactly their posts.
    for name in LOCALS:
        posts = stack.call("GET", f"/users/{name}/posts?limit=100").body["posts"]
        assert sorted(post["text"] for post in posts) == sorted(texts[name])
    public = stack.call("GET", "/timeline/public?limit=100").body["posts"]
    assert len(public) == len({post["id"] for post in public}) == POSTS
    alice = stack.call("GET", "/api/v1/accounts/lookup?acct=alice").body
    following_list = stack.call("GET", f"/api/v1/accounts/{alice['id']}/following").body
    assert sorted(account["username"] for account in following_list) == ["bob", "carol"]
