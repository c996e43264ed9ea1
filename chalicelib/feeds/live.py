"""The live feeds of timelines: a route's answer from the timeline's marker,
a 304 when the client's copy is current, else the rendered feed.

A feed trusts its timeline's marker (`feeds.markers`) for "has it changed",
and reads posts only to render (for the live routes and for the static copies
`feeds.publisher` writes). The posts come from eventually consistent indexes, so
a body rendered soon after a change may not show it yet. A live feed is
sent under one of three sets of validators:
- settled: the last change is older than `ARCHIVE_SETTLE_SECONDS`, so the
  indexes are trusted to show it. The marker's ETag and Last-Modified; both
  may give 304.
- checked: the change is younger, but the rendered body shows the marker's
  last changes (`render.shows_last_changes`). An ETag of its own, which gives
  304 from the marker alone until the marker changes or settles (then one
  more render, under the settled ETag, replaces any copy the check was wrong
  about); Last-Modified one second early and never a 304 on
  If-Modified-Since, whose whole seconds cannot tell a change in the same
  second apart, nor one whose write commits a little after its timestamp.
- behind: younger, and the body misses one of the marker's last changes.
  `Cache-Control: no-cache`, under an ETag that nothing matches later.

A mirror change (the marker's `mirror` mark) names no post, so no body can
prove it shows it: a young one is taken as shown, under the checked ETag.
The mirror moves its version only once the page's writes were acknowledged,
so only an index lagging those writes can make that wrong, and a checked
copy lives until the change settles (docs/DESIGN.md, "Feeds of mirrored
posts").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.models import Post
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.feeds.conditional import is_not_modified
from chalicelib.feeds.markers import FeedStore, Marker
from chalicelib.feeds.render import (
    FeedChannel,
    FeedKind,
    FeedMarker,
    Timeline,
    etag_for,
    feed_headers,
    last_modified_for,
    newest_first,
    render_feed,
    shows_last_changes,
)


class PostPage(Protocol):
    posts: list[Post]


class TimelinePosts(Protocol):
    """The newest posts of a timeline, newest first, a page at a time."""

    def public_posts(self, before_id: str | None, limit: int) -> PostPage: ...

    def author_posts(self, author: str, before_id: str | None, limit: int) -> PostPage: ...


@dataclass(frozen=True)
class FeedReply:
    """A live feed's answer: `body` None means 304 Not Modified."""

    headers: dict[str, str]
    body: str | None = None


class Feeds:
    """Renders a timeline's feed and answers the live routes."""

    def __init__(self, store: TimelinePosts, markers: FeedStore, settings: Settings, clock=time.time) -> None:
        self._store = store
        self._markers = markers
        self._settings = settings
        self._clock = clock

    def live(self, username: str | None, kind: FeedKind | str, request_headers: Mapping[str, str]) -> FeedReply:
        """The feed of a user (or, with None, the public timeline), in `kind`
        ("rss" or "atom": a route names it without importing this module).

        A conditional request that still matches is answered from the marker
        alone: one read, no posts queried, nothing rendered. Raises NotFound
        for an unknown user.
        """
        kind = FeedKind(kind)
        timeline = timeline_of(username)
        stored = self._markers.marker(timeline)
        if stored.suspended:
            # The primary suspended the account: its page is gone (404, not
            # 410: a suspension can be lifted, and a reader should not
            # unsubscribe for good).
            raise NotFound(f"account {username} is suspended", code="account_suspended")
        channel = self.channel(timeline, kind)
        standing = Standing.SETTLED if self.is_settled(stored) else Standing.CHECKED
        headers = _validators(stored, channel, kind, standing)
        comparable_date = headers["Last-Modified"] if standing is Standing.SETTLED else None
        if is_not_modified(request_headers, etag=headers["ETag"], last_modified=comparable_date):
            return FeedReply(headers)
        posts = self._latest(timeline)
        shown_ids = [post.id for post in newest_first(posts, channel.max_items)]
        if standing is Standing.CHECKED and not shows_last_changes(stored.lanes, shown_ids, channel.max_items):
            headers = _validators(stored, channel, kind, Standing.BEHIND)
        return FeedReply(headers, render_feed(kind, posts, channel).decode())

    def render_every_kind(self, timeline: Timeline) -> dict[FeedKind, bytes]:
        """The timeline's feed in every kind, from one read of its posts."""
        posts = self._latest(timeline)
        return {kind: render_feed(kind, posts, self.channel(timeline, kind)) for kind in FeedKind}

    def channel(self, timeline: Timeline, kind: FeedKind) -> FeedChannel:
        """Everything but the posts; a static copy uses the live route's
        channel, so both are the same document."""
        base = self._settings.public_base_url
        if timeline.username is None:
            title, description, alternate = (
                "Lifeboat public timeline",
                "Everyone's posts on Lifeboat",
                "timeline/public",
            )
        else:
            name = timeline.username
            title, description, alternate = f"{name} on Lifeboat", f"Posts by {name} on Lifeboat", f"users/{name}/posts"
        return FeedChannel(
            timeline=timeline,
            title=title,
            description=description,
            self_url=f"{base}/{live_path(timeline, kind)}",
            alternate_url=f"{base}/{alternate}",
            base_url=base,
            max_items=self._settings.feed_items,
        )

    def is_settled(self, marker: Marker) -> bool:
        """True once the indexes can be trusted to show the marker's change."""
        age_ms = int(self._clock() * 1000) - ids.millis_from_iso(marker.last_changed_at)
        return age_ms >= self._settings.archive_settle_seconds * 1000

    def _latest(self, timeline: Timeline) -> list[Post]:
        limit = self._settings.feed_items
        if timeline.username is None:
            return self._store.public_posts(None, limit).posts
        return self._store.author_posts(timeline.username, None, limit).posts


class Standing(StrEnum):
    """How far a rendered body can be trusted to match its marker; see the
    module docstring."""

    SETTLED = "settled"
    CHECKED = "checked"
    BEHIND = "behind"


def _validators(stored: Marker, channel: FeedChannel, kind: FeedKind, standing: Standing) -> dict[str, str]:
    """The headers of a feed under `stored`, for a 200 and a 304 alike.

    Each standing has its own ETag, so a copy taken before the change
    settled is rendered again once it has. A young change gets a
    Last-Modified one second early: an If-Modified-Since client sent it
    never gets a 304 for a change made later in the same second."""
    if standing is Standing.SETTLED:
        marker = stored.as_feed_marker()
    else:
        early = ids.iso_from_millis(ids.millis_from_iso(stored.last_changed_at) - 1000)
        marker = FeedMarker(changed_at=early, version=f"{stored.edition}:{standing.value}")
    headers = feed_headers(kind, etag=etag_for(marker, channel, kind), last_modified=last_modified_for(marker))
    return (headers | {"Cache-Control": "no-cache"}) if standing is Standing.BEHIND else headers


def timeline_of(username: str | None) -> Timeline:
    """The timeline a route names; a username that cannot exist is not found."""
    try:
        return Timeline(username)
    except ValidationFailed as exc:
        raise NotFound(f"no user {username}", code="user_not_found") from exc


def live_path(timeline: Timeline, kind: FeedKind) -> str:
    """The live route of a feed, relative to the API's base URL."""
    prefix = "timeline/public" if timeline.username is None else f"users/{timeline.username}"
    return f"{prefix}/feed.{kind.value}"
