"""The real Mastodon.py client against the real local stack on loopback."""

from __future__ import annotations

import uuid

import pytest
from mastodon import Mastodon, MastodonAPIError, MastodonNotFoundError, MastodonUnauthorizedError

from tests.e2e.stack import start_stack, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack():
    running = start_stack()
    yield running
    running.stop()


def client(stack, token: str) -> Mastodon:
    return Mastodon(access_token=token, api_base_url=stack.base_url, version_check_mode="none")


@pytest.fixture
def users(stack):
    """Three fresh users (the stack is shared by the module's tests)."""
    suffix = uuid.uuid4().hex[:8]
    return {name: client(stack, stack.new_user(f"{name}_{suffix}")) for name in ("alice", "bob", "carol")}


def test_instance_is_readable_and_its_version_parses(stack):
    masto = Mastodon(api_base_url=stack.base_url, version_check_mode="none")

    instance = masto.instance()

    assert instance.title == "Lifeboat"
    assert instance.configuration.statuses.max_characters == 500
    assert masto.retrieve_mastodon_version() == "4.3.0"
    assert masto.instance_v1().version.startswith("4.3.0 (compatible; Lifeboat")


def test_post_read_back_and_delete(users):
    alice = users["alice"]

    status = alice.status_post("Hello from Mastodon.py <3", spoiler_text="greeting", language="en")
    fetched = alice.status(status.id)
    deleted = alice.status_delete(status.id)

    assert fetched.id == status.id and fetched.content == "<p>Hello from Mastodon.py &lt;3</p>"
    assert fetched.spoiler_text == "greeting" and fetched.account.acct == alice.me().acct
    assert deleted.text == "Hello from Mastodon.py <3"
    with pytest.raises(MastodonNotFoundError):
        alice.status(status.id)


def test_the_idempotency_key_makes_a_retry_return_the_first_status(users):
    alice = users["alice"]

    first = alice.status_post("exactly once", idempotency_key="retry-me")
    second = alice.status_post("exactly once", idempotency_key="retry-me")
    unkeyed = alice.status_post("exactly once")

    assert first.id == second.id != unkeyed.id
    assert [s.id for s in alice.account_statuses(alice.me().id)] == [unkeyed.id, first.id]


def test_replies_carry_the_parent(users):
    alice, bob = users["alice"], users["bob"]
    parent = alice.status_post("a question")

    answer = bob.status_post("an answer", in_reply_to_id=parent)

    assert answer.in_reply_to_id == parent.id and answer.in_reply_to_account_id == alice.me().id


def test_fetch_next_and_previous_walk_a_timeline_in_pages(users):
    bob = users["bob"]
    made = [bob.status_post(f"page test {i}").id for i in range(11)]
    me = bob.me().id

    pages = [bob.account_statuses(me, limit=4)]
    while (following := bob.fetch_next(pages[-1])) is not None:
        pages.append(following)

    assert [len(page) for page in pages] == [4, 4, 3]
    assert [s.id for page in pages for s in page] == list(reversed(made))
    back = bob.fetch_previous(pages[-1])
    assert [s.id for s in back] == [s.id for s in pages[1]]
    assert bob.fetch_remaining(bob.account_statuses(me, limit=5)) == bob.account_statuses(me, limit=40)


def test_public_timeline_pages_across_users(users):
    made = [users[name].status_post(f"public {name}").id for name in ("alice", "bob", "carol")]
    # The public timeline has them once the stream has delivered them (well under a second).
    wait_for(lambda: [s.id for s in users["alice"].timeline_public(limit=1)] == made[-1:], timeout=10)

    first = users["alice"].timeline_public(limit=2)
    second = users["alice"].fetch_next(first)

    assert [s.id for s in first] == list(reversed(made))[:2]
    assert second[0].id == made[0]


def test_follow_unfollow_and_the_home_timeline(users):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    bob_id = alice.account_lookup(bob.me().acct).id
    bob_post = bob.status_post("bob posts").id
    carol.status_post("carol posts")
    alice_post = alice.status_post("alice posts").id

    relationship = alice.account_follow(bob_id)

    def home() -> list:
        return [s.id for s in alice.timeline_home()]

    # The posts' fan-out and the follow's backfill run on the stream, a moment later.
    assert relationship.following is True
    wait_for(lambda: home() == [alice_post, bob_post], timeout=10)
    assert [a.id for a in alice.account_following(alice.me().id)] == [bob_id]
    assert alice.account_unfollow(bob_id).following is False
    wait_for(lambda: home() == [alice_post], timeout=10)


def test_errors_surface_as_mastodon_py_exceptions(stack, users):
    with pytest.raises(MastodonUnauthorizedError):
        client(stack, "lb_not-a-real-token").timeline_home()
    with pytest.raises(MastodonNotFoundError):
        users["alice"].account_lookup("nobody_at_all")
    with pytest.raises(MastodonAPIError, match="visibility"):
        users["alice"].status_post("secret", visibility="private")
    with pytest.raises(MastodonAPIError, match="500"):
        users["alice"].status_post("x" * 501)


def test_a_trailing_slash_reaches_the_same_route(stack):
    with_slash = stack.call("GET", "/api/v1/instance/")
    assert (
        with_slash.status == 200 and with_slash.body["version"] == stack.call("GET", "/api/v1/instance").body["version"]
    )
