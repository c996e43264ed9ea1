"""One contract, two implementations: the mirror's writes, kept by the
DynamoDB + KMS `MirrorStore` (on moto) and by the in-memory fake, and its
state item (`MirrorStateStore` and its fake)."""

from __future__ import annotations

import hashlib

import pytest

from chalicelib.accounts.store import Grant
from chalicelib.aws import clients as aws
from chalicelib.aws import dynamo
from chalicelib.core.clock import iso_at
from chalicelib.mastodon.follows import FollowCounts, FollowStore
from chalicelib.mirror import layout
from chalicelib.mirror.changes import AccountChange, CredentialChange, FollowChange, PostChange
from chalicelib.mirror.state import InboxPosition, MirrorState, MirrorStateStore, Progress
from chalicelib.mirror.store import MirroredAccount, MirrorStore
from chalicelib.upstream.tokens import ensure_key
from devtools.fakes.mastodon import InMemoryFollowStore
from devtools.fakes.mirror import InMemoryMirrorState, InMemoryMirrorStore
from tests.conftest import TABLE

KEY_ALIAS = "alias/lifeboat-upstream-tokens"
BCRYPT = "$2b$12$" + "b" * 53
NOW = "2026-12-01T00:00:00.000Z"
LATER = 1_796_100_000.0  # the state store's clock, when a page changed something
DIGEST = hashlib.sha256(b"alice-primary-token").hexdigest()
SHARDS = 4


class Mirror:
    """The store under test, its follow graph, and how a test marks a post
    as one the replay sent (the replay's confirm writes that marker)."""

    def __init__(self, store, follows, mark_replayed, raw_profile) -> None:
        self.store, self.follows, self.mark_replayed, self.raw_profile = store, follows, mark_replayed, raw_profile


@pytest.fixture(params=["dynamodb", "memory"])
def mirror(request):
    if request.param == "memory":
        follows = InMemoryFollowStore(max_following=3)
        store = InMemoryMirrorStore(follows)
        return Mirror(store, follows, store.replayed.add, lambda username: {})
    request.getfixturevalue("moto")
    client, kms = aws.new_client("dynamodb"), aws.new_client("kms")
    follows = FollowStore(client, TABLE, max_following=3)
    store = MirrorStore(client, kms, TABLE, ensure_key(kms, KEY_ALIAS), follows, SHARDS)

    def mark_replayed(upstream_id):
        client.put_item(TableName=TABLE, Item=dynamo.key(layout.upstream_marker_pk(upstream_id), "POST"))

    def raw_profile(username):
        return client.get_item(TableName=TABLE, Key=dynamo.key(f"USER#{username}", "PROFILE"))["Item"]

    return Mirror(store, follows, mark_replayed, raw_profile)


def post(upstream_id="p1", author="bob", created_at=NOW, deleted=False, text="hello"):
    return PostChange(upstream_id, author, text, created_at, None, deleted)


def test_an_account_is_kept_and_replaced_by_its_newer_state(mirror):
    assert mirror.store.apply_account(AccountChange("alice", "Alice", NOW, False, BCRYPT)) is True
    assert mirror.store.apply_account(AccountChange("alice", "Alice B.", NOW, True, BCRYPT)) is False
    assert mirror.store.account("alice") == MirroredAccount("alice", "Alice B.", NOW, True, True)
    assert mirror.store.account("nobody") is None


def test_the_password_hash_is_stored_encrypted_only(mirror):
    mirror.store.apply_account(AccountChange("alice", "Alice", NOW, False, BCRYPT))
    assert BCRYPT.encode() not in repr(mirror.raw_profile("alice")).encode()
    mirror.store.apply_account(AccountChange("alice", "Alice", NOW, False, None))
    assert mirror.store.account("alice").has_password is False


def test_an_account_change_that_does_not_tell_the_hash_or_suspension_keeps_them(mirror):
    # The export (S3 inbox) sends the hash; the Mastodon API's account does not.
    mirror.store.apply_account(AccountChange("alice", "Alice", NOW, True, BCRYPT))
    mirror.store.apply_account(AccountChange("alice", "Alice B.", NOW))
    assert mirror.store.account("alice") == MirroredAccount("alice", "Alice B.", NOW, True, True)
    mirror.store.apply_account(AccountChange("alice", "Alice B.", NOW, False))
    assert mirror.store.account("alice") == MirroredAccount("alice", "Alice B.", NOW, False, True)
    # Said as null, the hash goes.
    mirror.store.apply_account(AccountChange("alice", "Alice B.", NOW, password_bcrypt=None))
    assert mirror.store.account("alice") == MirroredAccount("alice", "Alice B.", NOW, False, False)


def test_a_new_account_told_nothing_of_its_hash_or_suspension_has_neither(mirror):
    assert mirror.store.apply_account(AccountChange("carol", "Carol", NOW)) is True
    assert mirror.store.account("carol") == MirroredAccount("carol", "Carol", NOW, False, False)


def test_the_password_hash_is_read_back_decrypted_for_a_sign_in(mirror):
    mirror.store.apply_account(AccountChange("alice", "Alice", NOW, False, BCRYPT))
    mirror.store.apply_account(AccountChange("bob", "Bob", NOW, True, None))
    assert mirror.store.password_hash("alice") == BCRYPT
    assert mirror.store.password_hash("bob") is None and mirror.store.password_hash("nobody") is None
    assert (mirror.store.suspended("alice"), mirror.store.suspended("bob"), mirror.store.suspended("nobody")) == (
        False,
        True,
        False,
    )


def test_a_credential_grants_its_scopes_until_revoked(mirror):
    mirror.store.apply_credentials([CredentialChange("alice", DIGEST, frozenset({"read"}), False)])
    assert mirror.store.grant(DIGEST) == Grant("alice", frozenset({"read"}), "primary")
    mirror.store.apply_credentials(
        [
            CredentialChange("alice", DIGEST, frozenset({"read", "write"}), False),
            CredentialChange("alice", DIGEST, frozenset({"read", "write"}), True),
        ]
    )
    assert mirror.store.grant(DIGEST) is None


def test_follows_keep_the_counts_right_when_repeated_or_undone(mirror):
    assert mirror.store.apply_follow(FollowChange("alice", "bob", True), NOW) is True
    assert mirror.store.apply_follow(FollowChange("alice", "bob", True), NOW) is False
    assert mirror.follows.counts(["alice", "bob"]) == {"alice": FollowCounts(1, 0), "bob": FollowCounts(0, 1)}
    assert mirror.store.apply_follow(FollowChange("alice", "bob", False), NOW) is True
    assert mirror.store.apply_follow(FollowChange("alice", "bob", False), NOW) is False
    assert mirror.follows.counts(["alice", "bob"]) == {"alice": FollowCounts(0, 0), "bob": FollowCounts(0, 0)}


def test_a_follow_past_the_cap_is_skipped(mirror):
    for followee in ("b1", "b2", "b3"):
        mirror.store.apply_follow(FollowChange("alice", followee, True), NOW)
    assert mirror.store.apply_follow(FollowChange("alice", "b4", True), NOW) is False
    assert mirror.follows.following("alice") == ["b1", "b2", "b3"]


def test_a_mirrored_post_has_a_deterministic_id_and_its_ttl(mirror):
    applied = mirror.store.apply_posts([post(), post()], retention_days=7)
    assert (applied.stored, applied.ours) == (1, 0)
    post_id = layout.mirrored_post_id(NOW, "p1")
    stored = mirror.store.post(post_id)
    assert (stored.state, stored.upstream_id, stored.source, stored.author) == ("mirrored", "p1", "mirror", "bob")
    assert stored.created_at == NOW and not stored.is_deleted
    mirror.store.apply_posts([post(text="edited")], retention_days=7)
    assert mirror.store.post(post_id).text == "edited"


def test_a_deleted_post_is_removed(mirror):
    mirror.store.apply_posts([post()], retention_days=7)
    applied = mirror.store.apply_posts([post(deleted=True, text="")], retention_days=7)
    assert applied.deleted == 1
    assert mirror.store.post(layout.mirrored_post_id(NOW, "p1")) is None


def test_a_post_lifeboat_replayed_is_not_stored_twice(mirror):
    mirror.mark_replayed("ours")
    applied = mirror.store.apply_posts([post("ours"), post("theirs")], retention_days=7)
    assert (applied.stored, applied.ours) == (1, 1)
    assert mirror.store.post(layout.mirrored_post_id(NOW, "ours")) is None


def test_many_posts_go_in_batches(mirror):
    changes = [post(f"p{n}", created_at=f"2026-12-01T00:00:{n % 60:02d}.{n:03d}Z") for n in range(60)]
    assert mirror.store.apply_posts(changes, retention_days=7).stored == 60
    assert all(mirror.store.post(layout.mirrored_post_id(c.created_at, c.upstream_id)) for c in changes)


# -- the mirror's one state item ---------------------------------------------------


@pytest.fixture(params=["dynamodb", "memory"])
def state(request):
    if request.param == "memory":
        return InMemoryMirrorState(clock=lambda: LATER)
    request.getfixturevalue("moto")
    return MirrorStateStore(aws.new_client("dynamodb"), TABLE, clock=lambda: LATER)


def test_a_fresh_mirror_has_no_cursor(state):
    assert state.load() == MirrorState()


def test_progress_moves_the_cursor_adds_the_counts_and_clears_the_error(state):
    state.record_error("transient: HTTP 500")
    state.record(Progress("c1", accounts=2, posts=5, malformed=1, changed=True))
    state.record(Progress("c2", posts=-1, changed=False, reached_end_at=NOW))
    expected = MirrorState(
        cursor="c2", cursor_at=NOW, accounts=2, posts=4, malformed=1, version=1, changed_at=iso_at(LATER)
    )
    assert state.load() == expected


def test_the_outage_mark_keeps_its_first_moment_until_over(state):
    state.note_outage(NOW)
    state.note_outage("2026-12-02T00:00:00.000Z")
    assert state.load().outage_began_at == NOW
    state.outage_over()
    assert state.load().outage_began_at is None


def test_an_inbox_batch_adds_its_counts_and_keeps_the_feeds_cursor_and_error(state):
    state.record(Progress("c1", accounts=1, posts=2))
    state.record_error("transient: HTTP 500")
    position = InboxPosition("mirror/inbox/a.jsonl", '"e1"', offset=4096, line=500)
    state.record(Progress(None, accounts=3, posts=4, malformed=1, changed=True), position)
    assert state.load() == MirrorState(
        cursor="c1",
        accounts=4,
        posts=6,
        malformed=1,
        version=1,
        changed_at=iso_at(LATER),
        last_error="transient: HTTP 500",
        inbox=position,
    )


def test_the_inbox_position_moves_and_is_removed_when_the_object_is_done(state):
    first = InboxPosition("mirror/inbox/a.jsonl", '"e1"', offset=10, line=1)
    later = InboxPosition("mirror/inbox/a.jsonl", '"e1"', offset=20, line=2)
    state.record(Progress(None), first)
    state.record(Progress(None), later)
    assert state.load().inbox == later
    state.record(Progress(None, posts=1))  # the object's last batch: no position
    assert state.load().inbox == later
    state.inbox_done()
    assert state.load() == MirrorState(posts=1)
