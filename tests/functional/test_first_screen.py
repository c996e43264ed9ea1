"""What Mastodon apps call on their first screen after signing in: the
instance, preferences, markers (stored per user), notifications, the lists
Lifeboat keeps none of, relationships and nodeinfo, with the scopes they need."""

from __future__ import annotations

import urllib.parse

import pytest

from chalicelib.accounts.store import READ
from chalicelib.mastodon import first_screen
from tests.functional.test_mastodon_api import FORM


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


def test_saving_a_marker_needs_the_write_scope_and_reading_it_read():
    import app

    assert app.app.routes["/api/v1/markers"]["POST"].view_function.scope == "write"
    assert app.app.routes["/api/v1/markers"]["GET"].view_function.scope == READ


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


def test_grouped_notifications_are_empty_in_their_shape(api, alice):
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
    assert document.body["software"]["name"] == "mastodon"
    assert document.body["metadata"]["software"]["name"] == "lifeboat"


def test_every_first_screen_route_declares_its_scope(api):
    import app

    paths = [*first_screen.EMPTY_LISTS, "/api/v1/preferences", "/api/v1/markers", "/api/v2/notifications"]
    declared = {app.app.routes[path]["GET"].view_function.scope for path in paths}
    assert declared == {"public", READ}
    assert app.app.routes["/api/v1/preferences"]["GET"].view_function.scope == READ
