"""The Mastodon client API through the Chalice test client: entity shapes,
errors in Mastodon's shape, and pagination edge cases."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from chalicelib.core import ids
from chalicelib.mastodon import ids as mastodon_ids
from tests.conftest import ADMIN_TOKEN

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def alice(api):
    return api.new_user("alice")


def post_status(api, token, text, headers=None, **fields):
    raw = urllib.parse.urlencode({"status": text, **fields})
    return api.call("POST", "/api/v1/statuses", token=token, headers={**FORM, **(headers or {})}, raw=raw)


def links(reply) -> dict[str, dict[str, str]]:
    found = {}
    header = {name.lower(): value for name, value in reply.headers.items()}.get("link", "")
    for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header):
        found[rel] = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
    return found


def test_a_form_encoded_status_comes_back_as_a_mastodon_status(api, alice):
    reply = post_status(api, alice, 'Hello <world> & "friends"\n\nsecond para\nline', language="en")

    assert reply.status == 200, reply.body
    status = reply.body
    assert isinstance(status["id"], str) and status["id"].isdigit()
    assert status["content"] == "<p>Hello &lt;world&gt; &amp; &quot;friends&quot;</p><p>second para<br />line</p>"
    assert status["visibility"] == "public" and status["language"] == "en"
    for empty in ("media_attachments", "mentions", "tags", "emojis", "filtered"):
        assert status[empty] == []
    assert status["reblogs_count"] == status["favourites_count"] == status["replies_count"] == 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", status["created_at"])
    assert status["url"].endswith(f"/@alice/{status['id']}")
    account = status["account"]
    assert account["id"] == "alice" and account["acct"] == "alice" and account["statuses_count"] == 1
    assert account["created_at"].endswith("T00:00:00.000Z")
    assert api.get(f"/api/v1/statuses/{status['id']}").body == status


def test_a_status_names_its_lifeboat_post_and_that_it_waits_for_the_primary(api, alice):
    status = post_status(api, alice, "safe here").body

    extension = status["lifeboat"]
    assert extension == {"post_id": extension["post_id"], "delivery": "waiting", "failure_reason": None}
    native = api.get(f"/posts/{extension['post_id']}").body
    assert native["text"] == "safe here" and native["state"] == "pending"
    assert mastodon_ids.mastodon_id(native["id"]) == status["id"]


def test_a_json_status_with_a_content_warning_and_a_reply(api, alice):
    parent = post_status(api, alice, "parent").body
    reply = api.post(
        "/api/v1/statuses",
        {"status": "child", "spoiler_text": "cw", "in_reply_to_id": parent["id"]},
        token=alice,
    )

    assert reply.status == 200, reply.body
    assert reply.body["spoiler_text"] == "cw" and reply.body["sensitive"] is True
    assert reply.body["in_reply_to_id"] == parent["id"]
    assert reply.body["in_reply_to_account_id"] == "alice"


def test_the_idempotency_key_gives_the_same_status_back(api, alice):
    first = post_status(api, alice, "once", headers={"Idempotency-Key": "k-1"})
    again = post_status(api, alice, "once", headers={"Idempotency-Key": "k-1"})

    assert first.status == again.status == 200
    assert first.body["id"] == again.body["id"]
    assert len(api.get("/api/v1/accounts/alice/statuses").body) == 1


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"media_ids[]": "1"}, "media_ids"),
        ({"poll[options][]": "a"}, "poll"),
        ({"visibility": "private"}, "visibility"),
        ({"visibility": "unlisted"}, "visibility"),
        ({"language": "english"}, "language"),
        ({"language": "en\n"}, "language"),
        ({"status": "   "}, "blank"),
    ],
)
def test_what_lifeboat_cannot_store_is_refused_with_422(api, alice, fields, needle):
    reply = post_status(api, alice, fields.pop("status", "text"), **fields)

    assert reply.status == 422
    assert set(reply.body) == {"error"} and needle in reply.body["error"]


def test_errors_have_mastodons_shape(api, alice):
    assert api.get("/api/v1/statuses/123").status == 404
    assert api.get("/api/v1/statuses/123").body == {"error": "Record not found"}
    assert api.get("/api/v1/statuses/not-a-number").status == 404
    unauthorized = api.get("/api/v1/timelines/home", token="lb_wrong")
    assert unauthorized.status == 401 and set(unauthorized.body) == {"error"}
    too_long = post_status(api, alice, "x" * 501)
    assert too_long.status == 422 and "500" in too_long.body["error"]


def test_only_the_author_deletes_and_gets_the_source_text_back(api, alice):
    bob = api.new_user("bob")
    status = post_status(api, alice, "delete me").body

    assert api.delete(f"/api/v1/statuses/{status['id']}", token=bob).status == 403
    deleted = api.delete(f"/api/v1/statuses/{status['id']}", token=alice)

    assert deleted.status == 200 and deleted.body["text"] == "delete me" and deleted.body["id"] == status["id"]
    assert api.get(f"/api/v1/statuses/{status['id']}").status == 404


def test_a_bodiless_delete_sent_as_a_form_deletes_the_status(api, alice):
    # Clients built on form posts send their DELETE with the same Content-Type.
    status = post_status(api, alice, "gone soon").body
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    deleted = api.delete(f"/api/v1/statuses/{status['id']}", token=alice, headers=form)

    assert deleted.status == 200 and deleted.body["id"] == status["id"]


def test_instance_reports_version_and_max_characters(api):
    v1, v2 = api.get("/api/v1/instance").body, api.get("/api/v2/instance").body

    assert v1["version"].startswith("4.3.0 ") and v2["version"] == v1["version"]
    assert v1["configuration"]["statuses"]["max_characters"] == 500
    assert v2["configuration"]["statuses"]["max_characters"] == 500
    assert api.get("/api/v1/instance/").body == v1


def test_status_ids_sort_in_time_order_and_fit_in_63_bits(api, alice):
    made = [post_status(api, alice, f"n{i}").body["id"] for i in range(30)]

    assert made == sorted(made, key=int) and len(set(made)) == 30
    assert all(0 < int(value) < 2**63 for value in made)


def test_ids_minted_in_one_millisecond_get_distinct_mastodon_ids():
    factory = ids.UlidFactory(clock=lambda: 1_700_000_000.5)
    made = [mastodon_ids.mastodon_id(factory.new()) for _ in range(1000)]

    assert len(set(made)) == 1000 and made == sorted(made, key=int)
    assert all(int(value) >> 16 == 1_700_000_000_500 for value in made)


def test_public_timeline_pages_with_max_id_min_id_since_id_and_links(api, alice):
    made = [post_status(api, alice, f"p{i}").body["id"] for i in range(7)]
    newest_first = list(reversed(made))

    first = api.get("/api/v1/timelines/public?limit=3")
    assert [s["id"] for s in first.body] == newest_first[:3]
    assert links(first)["next"] == {"limit": "3", "max_id": newest_first[2]}
    assert links(first)["prev"] == {"limit": "3", "min_id": newest_first[0]}

    second = api.get(f"/api/v1/timelines/public?limit=3&max_id={newest_first[2]}")
    assert [s["id"] for s in second.body] == newest_first[3:6]
    last = api.get(f"/api/v1/timelines/public?limit=3&max_id={newest_first[5]}")
    assert [s["id"] for s in last.body] == newest_first[6:]
    assert "next" not in links(last)

    # min_id: the page right after it; since_id: the newest above it.
    assert [s["id"] for s in api.get(f"/api/v1/timelines/public?limit=2&min_id={made[1]}").body] == [made[3], made[2]]
    assert [s["id"] for s in api.get(f"/api/v1/timelines/public?limit=2&since_id={made[1]}").body] == newest_first[:2]
    assert api.get(f"/api/v1/timelines/public?min_id={made[-1]}").body == []
    assert links(api.get(f"/api/v1/timelines/public?min_id={made[-1]}")) == {}


def test_limit_is_clamped_as_mastodon_does_and_bad_ids_are_422(api, alice):
    # Two authors, so that 45 posts stay under the per-user rate limit.
    authors = [alice, api.new_user("bob")]
    for i in range(45):
        post_status(api, authors[i % 2], f"s{i}")

    assert len(api.get("/api/v1/timelines/public").body) == 20
    assert len(api.get("/api/v1/timelines/public?limit=100").body) == 40
    assert len(api.get("/api/v1/timelines/public?limit=0").body) == 1
    assert api.get("/api/v1/timelines/public?max_id=abc").status == 422


def test_lookup_account_and_its_statuses(api, alice):
    post_status(api, alice, "mine")

    assert api.get("/api/v1/accounts/lookup?acct=alice").body["id"] == "alice"
    assert api.get("/api/v1/accounts/lookup?acct=@alice@anywhere.example").body["username"] == "alice"
    assert api.get("/api/v1/accounts/lookup?acct=nobody").status == 404
    assert api.get("/api/v1/accounts/lookup?acct=alice@evil@example").status == 404  # not an address
    assert [s["content"] for s in api.get("/api/v1/accounts/alice/statuses").body] == ["<p>mine</p>"]
    assert api.get("/api/v1/accounts/alice/statuses?pinned=true").body == []
    me = api.get("/api/v1/accounts/verify_credentials", token=alice).body
    assert me["id"] == "alice" and me["source"]["privacy"] == "public"


def test_follow_unfollow_relationship_counts_and_home_timeline(api, alice):
    bob, carol = api.new_user("bob"), api.new_user("carol")
    post_status(api, bob, "from bob")
    post_status(api, carol, "from carol")
    mine = post_status(api, alice, "from alice").body["id"]

    followed = api.post("/api/v1/accounts/bob/follow", token=alice)
    assert followed.status == 200 and followed.body["following"] is True and followed.body["id"] == "bob"
    assert api.post("/api/v1/accounts/bob/follow", token=alice).body["following"] is True
    assert api.get("/api/v1/accounts/bob").body["followers_count"] == 1
    assert api.get("/api/v1/accounts/alice").body["following_count"] == 1
    assert api.post("/api/v1/accounts/alice/follow", token=bob).body["followed_by"] is True

    home = api.get("/api/v1/timelines/home", token=alice).body
    assert [s["account"]["id"] for s in home] == ["alice", "bob"] and home[0]["id"] == mine
    assert [a["id"] for a in api.get("/api/v1/accounts/alice/following").body] == ["bob"]

    unfollowed = api.post("/api/v1/accounts/bob/unfollow", token=alice)
    assert unfollowed.body["following"] is False
    assert api.get("/api/v1/accounts/bob").body["followers_count"] == 0
    assert [s["account"]["id"] for s in api.get("/api/v1/timelines/home", token=alice).body] == ["alice"]
    assert api.post("/api/v1/accounts/alice/follow", token=alice).status == 422
    assert api.post("/api/v1/accounts/nobody/follow", token=alice).status == 404


def test_admin_imports_mastodons_following_export(api, alice):
    for name in ("bob", "carol"):
        api.new_user(name)
    export = (
        "Account address,Show boosts,Notify on new posts,Languages\n"
        "bob@lifeboat.example,true,false,\n"
        'carol@lifeboat.example,false,true,"en,de"\n'
        "nobody@lifeboat.example,true,false,\n"
    )

    reply = api.call(
        "POST", "/admin/users/alice/following", token=ADMIN_TOKEN, headers={"Content-Type": "text/csv"}, raw=export
    )
    again = api.call(
        "POST", "/admin/users/alice/following", token=ADMIN_TOKEN, headers={"Content-Type": "text/csv"}, raw=export
    )

    assert reply.status == 200 and reply.body["followed"] == 2 and len(reply.body["skipped"]) == 1
    assert again.body["followed"] == 0 and again.body["already_following"] == 2
    carol = api.get("/api/v1/accounts/carol").body
    assert carol["followers_count"] == 1
    relationship = api.post("/api/v1/accounts/carol/follow", token=alice).body
    assert relationship["showing_reblogs"] is False and relationship["notifying"] is True
    assert relationship["languages"] == ["en", "de"]
    bad = api.call(
        "POST",
        "/admin/users/alice/following",
        token=ADMIN_TOKEN,
        headers={"Content-Type": "text/csv"},
        raw="who,what\n",
    )
    assert bad.status == 422
    assert (
        api.call("POST", "/admin/users/alice/following", headers={"Content-Type": "text/csv"}, raw=export).status == 401
    )


def test_statuses_count_follows_posts_and_deletes_without_reading_posts(api, alice):
    made = [post_status(api, alice, f"count {i}").body["id"] for i in range(3)]
    api.call("DELETE", f"/api/v1/statuses/{made[0]}", token=alice)

    account = api.get("/api/v1/accounts/alice").body

    assert account["statuses_count"] == 2
    assert account["last_status_at"] == api.get(f"/api/v1/statuses/{made[-1]}").body["created_at"][:10]
