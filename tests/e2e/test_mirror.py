"""The warm standby end to end: the fake primary, a real server on loopback,
serves its change feed; Lifeboat (moto) mirrors it while the primary is up,
then carries its users through an outage and replays only the outage's posts."""

from __future__ import annotations

import json
import urllib.request

import pytest

from chalicelib import wiring
from chalicelib.aws import clients as aws
from chalicelib.mirror import layout
from chalicelib.mirror.service import Mirror
from chalicelib.upstream.tokens import ensure_key
from tests.e2e.conftest import PRIMARY_TOKEN

pytestmark = pytest.mark.e2e

USERS = 50
POSTS = 500
FOLLOWED = [f"user{n}" for n in range(1, 11)]
FEED_FAULTS = [
    {"status": 429, "retry_after": 1},
    {"die_mid_page": True},
    {"status": 503, "retry_after": 1},
    {"status": 500},
]


def control(primary, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        primary.url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def standby(monkeypatch, primary, api):
    monkeypatch.setenv("UPSTREAM_URL", primary.url)
    monkeypatch.setenv("UPSTREAM_TOKEN", PRIMARY_TOKEN)
    monkeypatch.setenv("UPSTREAM_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("MIRROR_ENABLED", "true")
    monkeypatch.setenv("REPLAY_SAFETY_MARGIN_SECONDS", "2")
    wiring.reset()
    ensure_key(aws.new_client("kms"), wiring.upstream_settings().token_key_id)
    return api, primary


def seed(primary) -> dict[str, str]:
    """50 users with a token each (plus a read-only and a revoked one),
    user0 following ten of them, and 500 posts."""
    tokens = {}
    for n in range(USERS):
        name = f"user{n}"
        control(primary, "/control/users", {"username": name, "created_at": "2026-01-01T00:00:00.000Z"})
        tokens[name] = f"primary-token-{name}"
        answer = control(primary, "/control/tokens", {"username": name, "token": tokens[name]})
        assert set(answer) == {"token_sha256"}  # digests only
    control(primary, "/control/tokens", {"username": "user1", "token": "read-only", "scopes": "read"})
    control(primary, "/control/tokens", {"username": "user2", "token": "revoked"})
    control(primary, "/control/tokens", {"username": "user2", "token": "revoked", "revoked": True})
    for name in FOLLOWED:
        control(primary, "/control/follows", {"follower": "user0", "followee": name})
    for n in range(POSTS):
        control(primary, "/control/posts", {"author": f"user{n % USERS}", "text": f"primary post {n}"})
    return tokens


def run_job(seconds: float = 60.0):
    return wiring.maintenance().run(lambda: seconds)


def mirror_until_complete(max_runs: int = 10) -> dict:
    for _ in range(max_runs):
        report = run_job()
        if report.mirror.get("reached_end"):
            return wiring.recovery_admin().status()["mirror"]
    raise AssertionError(f"mirror incomplete: {wiring.recovery_admin().status()['mirror']}")


def bring_up(primary, runs: int = 3) -> None:
    primary.configure(down=False)
    for _ in range(runs):
        run_job()


def take_down(primary) -> None:
    primary.configure(down=True)
    for _ in range(2):
        run_job()
    assert wiring.recovery_admin().status()["primary"] == "down"


def test_mirror_then_fall_over_then_replay_only_the_outage(standby):
    api, primary = standby
    tokens = seed(primary)
    bring_up(primary)
    mirror = mirror_until_complete()
    assert (mirror["accounts"], mirror["posts"], mirror["last_error"]) == (USERS, POSTS, None)
    assert mirror["lag_seconds"] is not None

    take_down(primary)
    me = tokens["user0"]
    # Never registered by an admin: the primary's token is enough.
    home = api.get("/api/v1/timelines/home?limit=40", token=me)
    assert home.status == 200
    authors = {status["account"]["username"] for status in home.body}
    # Their own mirrored posts and those of whom they follow, nobody else's.
    assert authors & set(FOLLOWED) and authors <= {*FOLLOWED, "user0"}
    parent = next(post for post in api.get("/users/user1/posts").body["posts"])
    assert parent["state"] == "mirrored"
    first = api.post("/posts", {"text": "first outage post"}, token=me)
    reply = api.post("/posts", {"text": "a reply to a mirrored post", "in_reply_to": parent["id"]}, token=me)
    assert (first.status, reply.status) == (201, 201)
    assert api.post("/posts", {"text": "no"}, token="revoked").status == 401
    assert api.post("/api/v1/statuses", {"status": "no"}, token="read-only").status == 403
    newest = api.get("/api/v1/timelines/home?limit=1", token=me).body
    assert newest[0]["content"] == "<p>a reply to a mirrored post</p>"

    before = len(primary.received())
    bring_up(primary)
    for _ in range(10):
        if wiring.recovery_admin().status()["backlog"] == 0:
            break
        run_job()
    received = primary.received()[before:]
    assert [post.id for post in received] == [first.body["id"], reply.body["id"]]
    assert received[1].in_reply_to == parent["upstream_id"]

    # The feed brings the two replayed posts back: recognised, not stored twice.
    mirror_until_complete()
    assert wiring.recovery_admin().status()["mirror"]["posts"] == POSTS
    for post in received:
        mirrored_id = layout.mirrored_post_id(post.received_at, post.upstream_id)
        assert api.get(f"/posts/{mirrored_id}").status == 404


def test_a_hostile_feed_still_mirrors_everything_once(standby):
    api, primary = standby
    control(primary, "/control/users", {"username": "alice"})
    for n in range(30):
        control(primary, "/control/posts", {"author": "alice", "text": f"post {n}"})
    feed_so_far = json.loads(urllib.request.urlopen(
        urllib.request.Request(primary.url + "/lifeboat/changes?limit=500",
                               headers={"Authorization": f"Bearer {PRIMARY_TOKEN}"}), timeout=5).read())  # fmt: skip
    # Duplicates of the whole feed, malformed changes, then more posts.
    control(primary, "/control/changes", {"changes": feed_so_far["changes"] + [{"type": "post"}, "junk", 7]})
    for n in range(30, 40):
        control(primary, "/control/posts", {"author": "alice", "text": f"post {n}"})
    control(primary, "/control/feed-faults", {"faults": FEED_FAULTS})
    # Pages of 8 changes, so the faults land mid-feed and the cursor moves often.
    mirror = wiring.mirror()
    wiring.override(mirror=Mirror(mirror._feed, wiring.mirror_store(), wiring.mirror_state(), 7, page_size=8))
    bring_up(primary)
    mirror = mirror_until_complete()
    assert mirror["accounts"] == 1
    stored = api.get("/users/alice/posts?limit=100").body["posts"]
    texts = [post["text"] for post in stored]
    assert sorted(texts) == sorted(f"post {n}" for n in range(40))
    assert wiring.mirror_state().load().malformed == 3


def read_feed(primary) -> dict:
    request = urllib.request.Request(
        primary.url + "/lifeboat/changes?limit=500", headers={"Authorization": f"Bearer {PRIMARY_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())
