"""The Mastodon API's follow endpoints over the in-memory follow graph:
relationships, account counts and imports, without DynamoDB."""

from __future__ import annotations

import pytest

from chalicelib.accounts.store import User
from chalicelib.config import Settings
from chalicelib.errors import FollowLimitReached, NotFound, ValidationFailed
from chalicelib.mastodon.api import MastodonApi
from devtools.fakes.mastodon import InMemoryFollowStore

ORIGIN = "https://lifeboat.example"
NOW = "2026-11-23T00:00:00.000Z"


class Users:
    def __init__(self, *names: str) -> None:
        self._users = {name: User(name, NOW, None, None) for name in names}

    def get(self, username: str) -> User | None:
        return self._users.get(username)


def mastodon_api(max_following: int = 7500) -> tuple[MastodonApi, InMemoryFollowStore]:
    settings = Settings(table_name="t", bucket_name="b", admin_token_sha256="", max_following=max_following)
    follows = InMemoryFollowStore(max_following)
    users = Users("alice", "bob", "carl", "dora")
    # The follow endpoints read no posts.
    return MastodonApi(posts=None, users=users, follows=follows, settings=settings, clock=lambda: NOW), follows


def test_a_follow_shows_in_both_relationships_and_in_the_counts():
    api, _ = mastodon_api()
    relationship = api.follow("alice", "bob")
    assert (relationship["following"], relationship["followed_by"]) == (True, False)
    assert api.relationship("bob", "alice")["followed_by"] is True
    assert api.account("bob", ORIGIN)["followers_count"] == 1
    assert api.account("alice", ORIGIN)["following_count"] == 1


def test_an_unfollow_undoes_the_follow():
    api, _ = mastodon_api()
    api.follow("alice", "bob")
    assert api.unfollow("alice", "bob")["following"] is False
    assert api.account("bob", ORIGIN)["followers_count"] == 0


def test_nobody_follows_themselves_or_an_unknown_account():
    api, follows = mastodon_api()
    with pytest.raises(ValidationFailed):
        api.follow("alice", "alice")
    with pytest.raises(NotFound):
        api.follow("alice", "nobody")
    assert follows.following("alice") == []


def test_an_import_past_the_cap_is_refused_whole_before_any_follow():
    api, follows = mastodon_api(max_following=2)
    csv_text = "Account address,Show boosts\nbob,true\ncarl,true\ndora,false\n"
    with pytest.raises(FollowLimitReached):
        api.import_following("alice", csv_text)
    assert follows.following("alice") == []


def test_an_import_reports_unknown_and_already_followed_accounts():
    api, follows = mastodon_api()
    api.follow("alice", "bob")
    report = api.import_following("alice", "Account address,Show boosts\nbob,true\nnobody,true\ncarl,false\n")
    assert (report["followed"], report["already_following"]) == (1, 1)
    assert report["skipped"] == ["line 3: no account 'nobody'"]
    assert follows.get("alice", "carl").show_reblogs is False
