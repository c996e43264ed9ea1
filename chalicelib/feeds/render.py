"""RSS 2.0 and Atom feeds of a timeline: posts in, bytes out.

Pure: no clock, no AWS, no HTTP framework. The same posts and channel always
give byte-identical documents, which is what lets `etag_for` promise a strong
ETag computed from a small marker instead of from the rendered body.

feedgen (and lxml under it) is imported only inside the render functions:
importing this module stays cheap on a Lambda cold start for every route that
never renders a feed.

Choices a caller can rely on:
- Item identity is the tag URI ``tag:lifeboat,2026:post:{id}`` (Atom ``id``,
  RSS ``guid isPermaLink="false"``). It is built from the Lifeboat post id
  only, so it survives a change of domain or stage and never changes when the
  post is later reinserted upstream and gets an ``upstream_id``.
- The author is Atom ``<author><name>`` and RSS ``<dc:creator>``: RSS's own
  ``<author>`` must be an email address, which Lifeboat does not have.
- The text is HTML-escaped and its newlines become ``<br/>``, as Atom
  ``content type="html"`` and RSS ``description``: a reader shows exactly the
  characters that were written (runs of spaces collapse, as HTML does) and
  never renders a user's markup.
- Titles are plain text. Atom says so (``type="text"``); RSS does not say
  whether a title may hold HTML and some readers guess (feedparser does), so
  an RSS title with ``<tag>`` or ``&amp;`` in it may show differently there.
  The description, always escaped HTML, is never ambiguous.
- The feed's ``updated``/``lastBuildDate`` is the newest shown post's
  ``created_at``; an empty feed uses the Unix epoch.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.core import ids
from chalicelib.core.models import Post, validate_username

if TYPE_CHECKING:
    from feedgen.feed import FeedGenerator

DEFAULT_FEED_ITEMS = 50
CACHE_MAX_AGE_SECONDS = 30
RSS_CONTENT_TYPE = "application/rss+xml; charset=utf-8"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
TAG_PREFIX = "tag:lifeboat,2026:"
# Part of every ETag: bump it when a change to this module (or a feedgen
# upgrade) changes the bytes rendered for the same posts, so a validator
# issued before a deploy never answers 304 for a body rendered after it.
RENDER_VERSION = "1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENERATOR = "Lifeboat"
TITLE_MAX_WORDS = 8
TITLE_MAX_CHARS = 80
ELLIPSIS = "\u2026"


class FeedKind(StrEnum):
    """The two feed formats; the value is also the file extension."""

    RSS = "rss"
    ATOM = "atom"

    @property
    def content_type(self) -> str:
        return RSS_CONTENT_TYPE if self is FeedKind.RSS else ATOM_CONTENT_TYPE

    @property
    def media_type(self) -> str:
        """The content type without parameters, as a link's ``type`` wants it."""
        return self.content_type.split(";", 1)[0]


@dataclass(frozen=True)
class Timeline:
    """Whose posts a feed shows: everyone's (``username`` None) or one author's.

    The username is validated here because it becomes part of an S3 key and a
    feed id: nothing outside ``[a-z0-9_]{1,30}`` may reach either.
    Raises ValidationFailed for any other username.
    """

    username: str | None = None

    def __post_init__(self) -> None:
        if self.username is not None:
            validate_username(self.username)

    @property
    def path(self) -> str:
        return "public" if self.username is None else f"users/{self.username}"


PUBLIC_TIMELINE = Timeline()


@dataclass(frozen=True)
class FeedChannel:
    """Everything besides the posts that decides a feed's bytes.

    One channel per (timeline, kind): ``self_url`` is the address this very
    document is served from, so the RSS and Atom channels differ there.
    ``base_url`` makes each item's link, ``{base_url}/posts/{id}``.
    ``description`` must not be empty (RSS requires it).
    """

    timeline: Timeline
    title: str
    description: str
    self_url: str
    alternate_url: str
    base_url: str
    max_items: int = DEFAULT_FEED_ITEMS

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {self.max_items}")


@dataclass(frozen=True)
class FeedMarker:
    """What the caller knows about a timeline's last change, without its posts.

    ``changed_at`` is the house ISO 8601 UTC time of the last change (a post
    added or deleted); it becomes Last-Modified. ``version`` is an opaque
    string that must change whenever the timeline's posts change, for example
    ``f"{newest_post_id}:{change_counter}"``: a delete can leave the newest id
    as it was, so the id alone is not enough.
    """

    changed_at: str
    version: str


@dataclass(frozen=True)
class Lane:
    """The last changes to one part of a timeline's index (one public shard,
    or one author), by commit order: the id of the post last added there and
    of the post last deleted there. ``last_added`` None means the part
    changed but its ids were not recorded (items written before they were)."""

    last_added: str | None
    last_deleted: str | None = None


def shows_last_changes(lanes: Iterable[Lane], shown_ids: Sequence[str], max_items: int) -> bool:
    """True when a feed showing ``shown_ids`` (newest first, as rendered)
    already reflects each lane's last add and last delete.

    The body is read from indexes that lag the marker; this is the evidence
    that they have caught up with it:
    - a lane's last deleted post must not be shown (a lagging index still
      holds it, with its state from before the delete);
    - its last added post must be shown, unless it was then deleted
      (``last_added == last_deleted``), or the feed is full and the post is
      older than every shown one, so it would not be shown anyway.
    Anything else (a post added after the marker was read, say) can only make
    the body newer than the marker, which no later marker matches. A lane
    whose last added post was deleted before its last delete, or whose ids
    are unknown, proves nothing: False, and the caller waits for the settle
    time instead.
    """
    shown = set(shown_ids)
    oldest_shown = shown_ids[-1] if len(shown_ids) >= max_items else None
    for lane in lanes:
        if lane.last_added is None or lane.last_deleted in shown:
            return False
        added_accounted_for = (
            lane.last_added in shown
            or lane.last_added == lane.last_deleted
            or (oldest_shown is not None and lane.last_added < oldest_shown)
        )
        if not added_accounted_for:
            return False
    return True


def render_feed(kind: FeedKind, posts: Iterable[Post], channel: FeedChannel) -> bytes:
    """Render ``kind`` for a route or job that has the kind as data."""
    return render_rss(posts, channel) if kind is FeedKind.RSS else render_atom(posts, channel)


def render_rss(posts: Iterable[Post], channel: FeedChannel) -> bytes:
    """The RSS 2.0 document, UTF-8: newest post first, at most ``max_items``.

    Posts may come in any order; deleted posts are left out.
    """
    return _feed_generator(posts, channel, FeedKind.RSS).rss_str(pretty=False, encoding="UTF-8")


def render_atom(posts: Iterable[Post], channel: FeedChannel) -> bytes:
    """The Atom document, UTF-8, with the same entries as `render_rss`."""
    return _feed_generator(posts, channel, FeedKind.ATOM).atom_str(pretty=False, encoding="UTF-8")


def newest_first(posts: Iterable[Post], max_items: int) -> list[Post]:
    """The posts a feed shows: not deleted, newest first, at most ``max_items``.

    Ids are ULIDs, whose order is creation order, so sorting by id is both
    newest-first and a total, deterministic order.
    """
    live = (post for post in posts if not post.is_deleted)
    return sorted(live, key=lambda post: post.id, reverse=True)[:max_items]


def post_guid(post_id: str) -> str:
    """The item's permanent identity; see the module docstring for why a tag URI."""
    return f"{TAG_PREFIX}post:{post_id}"


def entry_title(text: str) -> str:
    """A one-line title: the first words of the text, with an ellipsis when cut."""
    words = text.split()
    if not words:
        return ELLIPSIS
    title = " ".join(words[:TITLE_MAX_WORDS])
    if len(words) <= TITLE_MAX_WORDS and len(title) <= TITLE_MAX_CHARS:
        return title
    return title[: TITLE_MAX_CHARS - 1].rstrip() + ELLIPSIS


def text_as_html(text: str) -> str:
    """The text as inert HTML: every markup character escaped, newlines kept."""
    return html.escape(text, quote=True).replace("\n", "<br/>")


def etag_for(marker: FeedMarker, channel: FeedChannel, kind: FeedKind) -> str:
    """A strong ETag for the feed the marker describes, without rendering it.

    Strong is honest because rendering is deterministic: the same marker,
    channel, kind and RENDER_VERSION always stand for the same bytes.
    """
    material = json.dumps(
        [RENDER_VERSION, kind.value, marker.changed_at, marker.version, asdict(channel)], sort_keys=True
    )
    return '"' + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32] + '"'


def last_modified_for(marker: FeedMarker) -> str:
    """The marker's time as an HTTP date (whole seconds, as HTTP dates are)."""
    return format_datetime(_parse_time(marker.changed_at).replace(microsecond=0), usegmt=True)


def feed_headers(kind: FeedKind, *, etag: str, last_modified: str) -> dict[str, str]:
    """Response headers for a feed, for a 200 and a 304 alike."""
    return {
        "Content-Type": kind.content_type,
        "ETag": etag,
        "Last-Modified": last_modified,
        "Cache-Control": f"public, max-age={CACHE_MAX_AGE_SECONDS}",
    }


def static_key(timeline: Timeline, kind: FeedKind) -> str:
    """The S3 key a published copy lives at: ``feeds/public.rss``, ``feeds/users/{username}.atom``."""
    return f"feeds/{timeline.path}.{kind.value}"


def _feed_generator(posts: Iterable[Post], channel: FeedChannel, kind: FeedKind) -> FeedGenerator:
    from feedgen.feed import FeedGenerator  # lazy: keeps feedgen and lxml off the cold-start path

    shown = newest_first(posts, channel.max_items)
    generator = FeedGenerator()
    generator.load_extension("dc", atom=False, rss=True)
    generator.id(f"{TAG_PREFIX}feed:{channel.timeline.path}")
    generator.title(channel.title)
    generator.description(channel.description)
    # feedgen makes the last link RSS's <link>, so the alternate goes last.
    generator.link(href=channel.self_url, rel="self", type=kind.media_type)
    generator.link(href=channel.alternate_url, rel="alternate")
    # feedgen defaults both of these to values that vary: the clock, and its
    # own version number.
    generator.generator(GENERATOR)
    generator.updated(max((_parse_time(post.created_at) for post in shown), default=EPOCH))
    for post in shown:
        _add_entry(generator, post, channel.base_url)
    return generator


def _add_entry(generator: FeedGenerator, post: Post, base_url: str) -> None:
    entry = generator.add_entry(order="append")
    entry.id(post_guid(post.id))
    entry.title(entry_title(post.text))
    entry.link(href=f"{base_url.rstrip('/')}/posts/{post.id}", rel="alternate")
    entry.content(text_as_html(post.text), type="html")
    created = _parse_time(post.created_at)
    entry.published(created)
    # An entry's updated defaults to the clock; a post never changes after it
    # is written, so its creation time is also its last update.
    entry.updated(created)
    entry.author(name=post.author)
    entry.dc.dc_creator(post.author)


def _parse_time(iso: str) -> datetime:
    return EPOCH + timedelta(milliseconds=ids.millis_from_iso(iso))
