"""What Mastodon apps call on their first screen after signing in: the
instance, preferences, markers (stored per user), notifications, the lists
Lifeboat keeps none of, relationships and nodeinfo, with the scopes they need."""

from __future__ import annotations

import urllib.parse

import pytest

from chalicelib.accounts.store import READ
from chalicelib.mastodon import first_screen
from tests.functional.test_mastodon_api import FORM, links


@pytest.fixture
def alice(api):
    return api.new_user("alice")


def test_the_instance_names_a_thumbnail_that_is_served(api):
    v1, v2 = api.get("/api/v1/instance").body, api.get("/api/v2/instance").body
    url = v2["thumbnail"]["url"]
    assert url == v1["thumbnail"] and url.startswith("http")
    # What a browser's <img> asks for: no binary type by name.
    accept = {"Accept": "image/avif,image/webp,image/*,*/*;q=0.8"}
    image = api._client.http.get(urllib.parse.urlsplit(url).path, headers=accept)
    assert (image.status_code, image.headers["Content-Type"]) == (200, "image/svg+xml")
    assert image.body.startswith(b"<svg ")


def test_the_instance_says_streaming_is_not_served_registrations_are_closed_and_the_api_version(api):
    v1, v2 = api.get("/api/v1/instance").body, api.get("/api/v2/instance").body
    # null is what Elk, Phanpy and masto.js skip without connecting (docs/DESIGN.md, "Streaming").
    assert v2["configuration"]["urls"]["streaming"] is None and v1["urls"]["streaming_api"] is None
    assert v2["registrations"]["enabled"] is False and v1["registrations"] is False
    assert v2["api_versions"] == {"mastodon": 2}


def test_preferences_are_the_fixed_posting_defaults(api, alice):
    reply = api.get("/api/v1/preferences", token=alice)
    assert reply.status == 200
    assert reply.body["posting:default:visibility"] == "public"
    assert reply.body["reading:expand:spoilers"] is False


def test_markers_are_saved_per_user_and_timeline_with_a_growing_version(api, alice):
    bob = api.new_user("bob")
    raw = "home%5Blast_read_id%5D=111&notifications%5Blast_read_id%5D=7"
    saved = api.call("POST", "/api/v1/markers", token=alice, headers=FORM, raw=raw)
    assert saved.status == 200, saved.body
    saved_ids = {name: marker["last_read_id"] for name, marker in saved.body.items()}
    assert saved_ids == {"home": "111", "notifications": "7"}

    again = api.post("/api/v1/markers", {"home": {"last_read_id": "222"}}, token=alice).body
    assert again["home"]["last_read_id"] == "222"
    assert again["home"]["version"] == saved.body["home"]["version"] + 1

    both = api.get("/api/v1/markers?timeline[]=home&timeline[]=notifications", token=alice).body
    assert (both["home"]["last_read_id"], both["notifications"]["last_read_id"]) == ("222", "7")
    assert api.get("/api/v1/markers?timeline[]=home", token=alice).body.keys() == {"home"}
    assert api.get("/api/v1/markers?timeline[]=home", token=bob).body == {}
    assert api.get("/api/v1/markers", token=alice).body == {}


def test_a_marker_that_is_not_an_id_is_refused(api, alice):
    reply = api.post("/api/v1/markers", {"home": {"last_read_id": "x" * 65}}, token=alice)
    assert reply.status == 422
    assert reply.body.keys() == {"error"}


def test_saving_a_marker_needs_write_statuses_and_reading_it_read_statuses():
    import app

    assert app.app.routes["/api/v1/markers"]["POST"].view_function.scope == "write:statuses"
    assert app.app.routes["/api/v1/markers"]["GET"].view_function.scope == "read:statuses"


@pytest.mark.parametrize("path", sorted(first_screen.EMPTY_LISTS))
def test_what_lifeboat_keeps_none_of_is_an_empty_list(api, alice, path):
    reply = api.get(path, token=alice)
    assert (reply.status, reply.body) == (200, [])
    assert "Link" not in reply.headers


@pytest.mark.parametrize("path", [path for path, scope in first_screen.EMPTY_LISTS.items() if scope == READ])
def test_the_empty_lists_of_a_user_need_a_token(api, path):
    reply = api.get(path)
    assert reply.status == 401
    assert reply.body.keys() == {"error"}


def test_notifications_without_replies_are_empty_in_their_shape(api, alice):
    assert api.get("/api/v1/notifications", token=alice).body == []
    reply = api.get("/api/v2/notifications", token=alice)
    assert (reply.status, reply.body) == (200, {"accounts": [], "statuses": [], "notification_groups": []})


def test_relationships_are_routed_ahead_of_an_account_and_follow_the_graph(api, alice):
    api.new_user("bob")
    assert api.post("/api/v1/accounts/bob/follow", token=alice).status == 200
    reply = api.get("/api/v1/accounts/relationships?id[]=bob&id[]=nobody&id[]=alice", token=alice)
    assert reply.status == 200
    assert [(item["id"], item["following"]) for item in reply.body] == [("bob", True), ("alice", False)]
    assert api.get("/api/v1/accounts/relationships?id=bob", token=alice).body[0]["id"] == "bob"
    assert api.get("/api/v1/accounts/relationships", token=alice).body == []
    assert api.get("/api/v1/accounts/relationships?id[]=bob").status == 401


def test_nodeinfo_is_found_from_the_well_known_link(api):
    links = api.get("/.well-known/nodeinfo").body["links"]
    assert [link["rel"] for link in links] == [first_screen.NODEINFO_SCHEMA]
    document = api.get(urllib.parse.urlsplit(links[0]["href"]).path)
    assert document.status == 200
    assert document.body["version"] == "2.0" and document.body["openRegistrations"] is False
    # megalodon reads the dialect from software.name, else metadata.upstream.name.
    assert document.body["software"]["name"] == "lifeboat"
    assert document.body["metadata"]["upstream"]["name"] == "mastodon"


def test_every_first_screen_route_declares_its_scope(api):
    import app

    paths = [*first_screen.EMPTY_LISTS, "/api/v1/preferences", "/api/v1/markers", "/api/v1/notifications"]
    declared = {path: app.app.routes[path]["GET"].view_function.scope for path in paths}
    # The scope Mastodon's own controller asks for each (doorkeeper_authorize!).
    assert declared == {
        "/api/v1/custom_emojis": "public",
        "/api/v1/filters": "read:filters",
        "/api/v2/filters": "read:filters",
        "/api/v1/lists": "read:lists",
        "/api/v1/followed_tags": "read:follows",
        "/api/v1/follow_requests": "read:follows",
        "/api/v1/announcements": READ,
        "/api/v1/conversations": "read:statuses",
        "/api/v1/preferences": "read:accounts",
        "/api/v1/markers": "read:statuses",
        "/api/v1/notifications": "read:notifications",
    }


def reply_to(api, token, parent_id, text="a reply"):
    raw = urllib.parse.urlencode({"status": text, "in_reply_to_id": parent_id})
    reply = api.call("POST", "/api/v1/statuses", token=token, headers=FORM, raw=raw)
    assert reply.status == 200, reply.body
    return reply.body


def test_a_reply_is_a_mention_notification_for_the_author_it_answers(api, alice):
    bob = api.new_user("bob")
    parent = api.post("/api/v1/statuses", {"status": "hello"}, token=alice).body
    answer = reply_to(api, bob, parent["id"])
    reply_to(api, alice, answer["id"], "alice answers herself too")  # to bob: his notification
    reply_to(api, alice, parent["id"], "a reply to oneself")  # notifies no one

    [mention] = api.get("/api/v1/notifications", token=alice).body
    assert (mention["type"], mention["id"], mention["account"]["id"]) == ("mention", answer["id"], "bob")
    assert mention["status"]["in_reply_to_id"] == parent["id"]
    assert [item["account"]["id"] for item in api.get("/api/v1/notifications", token=bob).body] == ["alice"]

    grouped = api.get("/api/v2/notifications", token=alice).body
    assert [group["status_id"] for group in grouped["notification_groups"]] == [answer["id"]]
    assert [account["id"] for account in grouped["accounts"]] == ["bob"]
    assert [status["id"] for status in grouped["statuses"]] == [answer["id"]]


def test_notifications_page_newest_first_by_link_and_leave_out_deleted_replies(api, alice):
    bob = api.new_user("bob")
    parent = api.post("/api/v1/statuses", {"status": "hello"}, token=alice).body
    answers = [reply_to(api, bob, parent["id"], f"reply {n}")["id"] for n in range(5)]
    first = api.get("/api/v1/notifications?limit=2", token=alice)
    assert [item["id"] for item in first.body] == answers[:-3:-1]
    older = links(first)["next"]
    second = api.get(f"/api/v1/notifications?limit=2&max_id={older['max_id']}", token=alice).body
    assert [item["id"] for item in second] == answers[2:0:-1]
    newer = api.get(f"/api/v1/notifications?min_id={answers[1]}&limit=2", token=alice).body
    assert [item["id"] for item in newer] == answers[3:1:-1]

    assert api.delete(f"/api/v1/statuses/{answers[4]}", token=bob).status == 200
    assert answers[4] not in [item["id"] for item in api.get("/api/v1/notifications", token=alice).body]


def test_notifications_filtered_to_other_types_are_empty(api, alice):
    bob = api.new_user("bob")
    parent = api.post("/api/v1/statuses", {"status": "hello"}, token=alice).body
    reply_to(api, bob, parent["id"])
    assert api.get("/api/v1/notifications?types[]=follow&types[]=favourite", token=alice).body == []
    assert api.get("/api/v1/notifications?exclude_types[]=mention", token=alice).body == []
    assert len(api.get("/api/v1/notifications?types[]=mention", token=alice).body) == 1
