"""Every Mastodon entity Lifeboat renders validates against Mastodon's
published schema (tests/reference/: Mastodon 4.7.0's API as OpenAPI 3.1),
rendered through the API as clients get it, with formats checked (uri,
date-time).

One deliberate deviation, named below: V1Instance `urls.streaming_api` is
null, because streaming is not served and null is what clients skip
without trying to connect (docs/DESIGN.md, "Streaming"). The instance's
contact address is "" unless CONTACT_EMAIL is set, as Mastodon sends it;
the entities are checked with it set, as a deployment should be."""

from __future__ import annotations

import copy
import json
import urllib.parse
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.functional.test_mastodon_api import FORM

SCHEMAS = Path(__file__).resolve().parents[1] / "reference" / "mastodon-openapi-schemas.json"
BASE = "urn:mastodon-openapi"
# The entities Lifeboat renders, by schema name: the test below checks that
# each was rendered at least once, so an entity cannot silently drop out.
RENDERED_ENTITIES = {
    "Account",
    "CredentialAccount",
    "Status",
    "V1Instance",
    "Instance",
    "Relationship",
    "Preferences",
    "Marker",
    "Notification",
    "NotificationGroup",
    "GroupedNotificationsResults",
    "Error",
    "CredentialApplication",
    "Token",
    "Application",
}


def _oauth_entities(api) -> list[tuple[str, dict]]:
    """An app registered, its client_credentials token, and the app as
    verify_credentials shows it."""
    app = api.post(
        "/api/v1/apps",
        {"client_name": "Schema check", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write"},
    ).body
    form = f"grant_type=client_credentials&client_id={app['client_id']}&client_secret={app['client_secret']}"
    token = api.call(
        "POST", "/oauth/token", raw=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    ).body
    verified = api.get("/api/v1/apps/verify_credentials", token=token["access_token"]).body
    return [("CredentialApplication", app), ("Token", token), ("Application", verified)]



def _reference_document() -> dict:
    document = json.loads(SCHEMAS.read_text(encoding="utf-8"))
    # The one deviation (module docstring): null where no streaming is served.
    urls = document["components"]["schemas"]["V1Instance"]["properties"]["urls"]
    urls["properties"]["streaming_api"]["type"] = ["string", "null"]
    return document


def _is_absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.scheme in {"urn", "mailto"}))


FORMATS = copy.deepcopy(jsonschema.Draft202012Validator.FORMAT_CHECKER)
FORMATS.checks("uri")(_is_absolute_uri)
REGISTRY = Registry().with_resource(BASE, Resource.from_contents(_reference_document(), DRAFT202012))


def schema_errors(name: str, body: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{BASE}#/components/schemas/{name}"}, registry=REGISTRY, format_checker=FORMATS
    )
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(body)]


def post(api, token, **fields):
    reply = api.call("POST", "/api/v1/statuses", token=token, headers=FORM, raw=urllib.parse.urlencode(fields))
    assert reply.status == 200, reply.body
    return reply.body


def rendered_entities(api) -> list[tuple[str, object]]:
    """Every entity Lifeboat renders, each as a client gets it."""
    alice, bob = api.new_user("alice"), api.new_user("bob")
    parent = post(api, alice, status="Hello\n\nworld", language="en")
    child = post(api, bob, status="a reply", in_reply_to_id=parent["id"], spoiler_text="cw")
    follow = api.post("/api/v1/accounts/alice/follow", token=bob).body
    doomed = post(api, bob, status="soon gone")
    deleted = api.delete(f"/api/v1/statuses/{doomed['id']}", token=bob).body
    grouped = api.get("/api/v2/notifications", token=alice).body
    markers = api.post("/api/v1/markers", {"home": {"last_read_id": child["id"]}}, token=bob).body
    found = [
        ("Account", api.get("/api/v1/accounts/alice").body),
        ("Account", api.get("/api/v1/accounts/lookup?acct=bob").body),
        ("CredentialAccount", api.get("/api/v1/accounts/verify_credentials", token=alice).body),
        ("Status", parent),
        ("Status", child),
        ("Status", deleted),
        ("Status", api.get(f"/api/v1/statuses/{child['id']}").body),
        ("V1Instance", api.get("/api/v1/instance").body),
        ("Instance", api.get("/api/v2/instance").body),
        ("Relationship", follow),
        ("Preferences", api.get("/api/v1/preferences", token=bob).body),
        ("GroupedNotificationsResults", api.get("/api/v2/notifications", token=bob).body),
        ("GroupedNotificationsResults", grouped),
        ("Error", api.get("/api/v1/statuses/1").body),
        ("Error", api.get("/api/v1/no/such/path").body),
        ("Error", api.get("/api/v1/timelines/home", token="wrong").body),
        ("Error", api.post("/api/v1/markers", {"home": {"last_read_id": ""}}, token=bob).body),
    ]
    found += [("Marker", marker) for marker in markers.values()]
    found += [("Notification", item) for item in api.get("/api/v1/notifications", token=alice).body]
    found += [("NotificationGroup", group) for group in grouped["notification_groups"]]
    found += [("Status", status) for status in api.get("/api/v1/timelines/home", token=bob).body]
    found += [("Status", status) for status in api.get("/api/v1/timelines/public").body]
    found += [("Status", status) for status in api.get("/api/v1/accounts/bob/statuses").body]
    found += [("Account", account) for account in api.get("/api/v1/accounts/bob/following").body]
    found += [("Relationship", item) for item in api.get("/api/v1/accounts/relationships?id[]=alice", token=bob).body]
    found += _oauth_entities(api)
    return found


@pytest.fixture
def contact_email(monkeypatch):
    monkeypatch.setenv("CONTACT_EMAIL", "lifeboat-admin@example.org")


def test_every_entity_lifeboat_renders_validates_against_mastodons_schema(contact_email, api):
    entities = rendered_entities(api)
    failures = {f"{name} #{index}": schema_errors(name, body) for index, (name, body) in enumerate(entities)}
    assert {where: errors for where, errors in failures.items() if errors} == {}
    assert {name for name, _ in entities} == RENDERED_ENTITIES
    print(f"{len({name for name, _ in entities})} entity schemas, {len(entities)} bodies validated")


@pytest.mark.parametrize(
    ("name", "body", "wrong"),
    [
        ("Instance", {"thumbnail": {"url": ""}}, "thumbnail/url"),
        ("Marker", {"last_read_id": "1", "version": "2", "updated_at": "2026-01-01T00:00:00.000Z"}, "version"),
        ("Status", {"created_at": "yesterday"}, "created_at"),
    ],
)
def test_the_check_catches_what_broke_clients(contact_email, api, name, body, wrong):
    # A broken field in an otherwise valid entity must be reported, formats included.
    entities = dict(rendered_entities(api))
    broken = {**entities[name], **body}
    assert any(error.startswith(wrong + ":") for error in schema_errors(name, broken))
