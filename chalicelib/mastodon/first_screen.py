"""What Mastodon apps call on their first screen after signing in, beyond
timelines: preferences, read markers, notifications, the lists Lifeboat
keeps none of, nodeinfo and the instance thumbnail (docs/DESIGN.md, "The
first screen").

Lifeboat answers each in its documented shape and, where it has nothing,
honestly empty: it has no filters, lists, tags, emoji, announcements or
direct conversations. Markers are chalicelib/mastodon/markers.py and
notifications (replies) chalicelib/mastodon/notifications.py.

Imported at cold start (app.py reads its paths): constants and small
functions only, the entities loaded when nodeinfo is first rendered.
"""

from __future__ import annotations

# Read-only lists Lifeboat has nothing in, with the scope Mastodon asks for
# (its granular scopes fold into read here).
# Each with the scope Mastodon asks of it.
EMPTY_LISTS = {
    "/api/v1/custom_emojis": "public",
    "/api/v1/filters": "read:filters",
    "/api/v2/filters": "read:filters",
    "/api/v1/lists": "read:lists",
    "/api/v1/followed_tags": "read:follows",
    "/api/v1/follow_requests": "read:follows",
    "/api/v1/announcements": "read",
    "/api/v1/conversations": "read:statuses",
}
# The instance thumbnail: Swift apps refuse `thumbnail.url: ""` and the v2
# schema requires a URL there. SVG, being text, passes Chalice and API Gateway
# as it is; a PNG is binary to them, and Chalice refuses it (400) to a browser
# whose Accept names no binary type exactly, as an <img>'s does.
THUMBNAIL_PATH = "/instance/thumbnail.svg"
THUMBNAIL_TYPE = "image/svg+xml"
THUMBNAIL_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" viewBox="0 0 640 360">'
    '<rect width="640" height="360" fill="#2b6cb0"/>'
    '<text x="320" y="200" font-family="sans-serif" font-size="64" fill="#fff" text-anchor="middle">Lifeboat</text>'
    "</svg>"
)
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.0"
# megalodon (and apps built on it) pick their API dialect from nodeinfo:
# `software.name`, else `metadata.upstream.name`, which names the API
# Lifeboat speaks, as Mastodon's forks do.
NODEINFO_SOFTWARE = "lifeboat"


def preferences() -> dict:
    """The Preferences entity: Lifeboat's fixed posting defaults."""
    return {
        "posting:default:visibility": "public",
        "posting:default:sensitive": False,
        "posting:default:language": None,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    }


def nodeinfo_links(origin: str) -> dict:
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{origin}/nodeinfo/2.0"}]}


def nodeinfo() -> dict:
    """Nodeinfo 2.0; Lifeboat counts no users or posts for it (0, as in the
    instance entities)."""
    from chalicelib.mastodon.entities import COMPATIBLE_API_VERSION, LIFEBOAT_VERSION

    return {
        "version": "2.0",
        "software": {"name": NODEINFO_SOFTWARE, "version": LIFEBOAT_VERSION},
        "protocols": [],
        "services": {"outbound": [], "inbound": []},
        "usage": {"users": {"total": 0, "activeMonth": 0, "activeHalfyear": 0}, "localPosts": 0},
        "openRegistrations": False,
        "metadata": {"nodeName": "Lifeboat", "upstream": {"name": "mastodon", "version": COMPATIBLE_API_VERSION}},
    }
