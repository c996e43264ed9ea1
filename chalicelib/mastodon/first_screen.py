"""What Mastodon apps call on their first screen after signing in, beyond
timelines: preferences, read markers, notifications, the lists Lifeboat
keeps none of, nodeinfo and the instance thumbnail (docs/DESIGN.md, "The
first screen").

Lifeboat answers each in its documented shape and, where it has nothing,
honestly empty: it has no filters, lists, tags, emoji, announcements or
direct conversations, and writes no notifications (it stores no mentions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.errors import ValidationFailed
from chalicelib.mastodon.entities import COMPATIBLE_API_VERSION, LIFEBOAT_VERSION
from chalicelib.mastodon.markers import MAX_ID_CHARS, TIMELINES, Marker

if TYPE_CHECKING:
    from chalicelib.mastodon.markers import MarkerStore

# Read-only lists Lifeboat has nothing in, with the scope Mastodon asks for
# (its granular scopes fold into read here).
EMPTY_LISTS = {
    "/api/v1/custom_emojis": "public",
    "/api/v1/filters": "read",
    "/api/v2/filters": "read",
    "/api/v1/lists": "read",
    "/api/v1/followed_tags": "read",
    "/api/v1/follow_requests": "read",
    "/api/v1/announcements": "read",
    "/api/v1/conversations": "read",
    "/api/v1/notifications": "read",
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
# megalodon (and apps built on it) pick their API dialect from this name;
# the API is Mastodon's, so Lifeboat names it, and itself in metadata.
NODEINFO_SOFTWARE = "mastodon"


def preferences() -> dict:
    """The Preferences entity: Lifeboat's fixed posting defaults."""
    return {
        "posting:default:visibility": "public",
        "posting:default:sensitive": False,
        "posting:default:language": None,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    }


def render_marker(marker: Marker) -> dict:
    return {"last_read_id": marker.last_read_id, "version": marker.version, "updated_at": marker.updated_at}


def grouped_notifications() -> dict:
    """GET /api/v2/notifications: the GroupedNotificationsResults, empty."""
    return {"accounts": [], "statuses": [], "notification_groups": []}


def nodeinfo_links(origin: str) -> dict:
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{origin}/nodeinfo/2.0"}]}


def nodeinfo() -> dict:
    """Nodeinfo 2.0; Lifeboat counts no users or posts for it (0, as in the
    instance entities)."""
    return {
        "version": "2.0",
        "software": {"name": NODEINFO_SOFTWARE, "version": COMPATIBLE_API_VERSION},
        "protocols": [],
        "services": {"outbound": [], "inbound": []},
        "usage": {"users": {"total": 0, "activeMonth": 0, "activeHalfyear": 0}, "localPosts": 0},
        "openRegistrations": False,
        "metadata": {"nodeName": "Lifeboat", "software": {"name": "lifeboat", "version": LIFEBOAT_VERSION}},
    }


class Markers:
    """GET and POST /api/v1/markers over the marker store."""

    def __init__(self, store: MarkerStore, clock: Callable[[], str]) -> None:
        self._store = store
        self._clock = clock

    def read(self, username: str, timelines: list[str]) -> dict:
        """The saved markers of the timelines asked for (none asked: none)."""
        asked = {timeline for timeline in timelines if timeline in TIMELINES}
        if not asked:
            return {}
        saved = self._store.markers(username)
        return {timeline: render_marker(saved[timeline]) for timeline in sorted(asked) if timeline in saved}

    def save(self, username: str, form: dict[str, list]) -> dict:
        """Save `home[last_read_id]` and/or `notifications[last_read_id]`
        (form fields, or nested JSON objects) and answer with the saved."""
        now = self._clock()
        saved = {}
        for timeline in TIMELINES:
            last_read_id = _last_read_id(form, timeline)
            if last_read_id is not None:
                saved[timeline] = render_marker(self._store.save(username, timeline, last_read_id, now))
        return saved


def _last_read_id(form: dict[str, list], timeline: str) -> str | None:
    values = form.get(f"{timeline}[last_read_id]")
    nested = form.get(timeline)
    if not values and nested and isinstance(nested[-1], dict):
        values = [nested[-1].get("last_read_id")]
    if not values:
        return None
    value = values[-1]
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value) or len(str(value)) > MAX_ID_CHARS:
        raise ValidationFailed(f"Validation failed: {timeline}[last_read_id] must be an id", code="invalid_marker")
    return str(value)
