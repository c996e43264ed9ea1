"""A home timeline page: the owner's fanned-out entries, and the posts of
the accounts merged at read (docs/DESIGN.md, "Home timeline"). Pure but for
its ports.

One Query of `HOME#<owner>` over the page's id window and one BatchGetItem
of the posts it names (with the owner's merged accounts in the same
request); then, only if the owner follows accounts merged at read (or has
just followed accounts the stream has not backfilled yet, `home.layout`),
one window read of each of their ByAuthor partitions, merged by id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.core.models import Post
from chalicelib.home.layout import Entry
from chalicelib.home.store import PageItems

# Entries read beyond a page's `limit`, so a few deleted posts (their
# entries go on the stream, a moment later) do not make it short.
READ_AHEAD = 5
# At most this many follows not yet backfilled are read at once by a page.
BACKFILLING_READ_MAX = 20

# authors, lowest, highest, limit, oldest_first -> (posts newest first, has_more)
AuthorsWindow = Callable[[list[str], str, str, int, bool], "Window"]


class Window(Protocol):
    posts: list[Post]
    has_more: bool


class HomeReads(Protocol):
    def entries(self, owner: str, lowest: str, highest: str, limit: int, oldest_first: bool = False) -> list[Entry]: ...

    def page_items(self, owner: str, entries: list[Entry]) -> PageItems: ...


@dataclass(frozen=True)
class HomePage:
    posts: list[Post]  # newest first
    has_more: bool


class HomeTimeline:
    def __init__(self, store: HomeReads, authors_window: AuthorsWindow) -> None:
        self._store = store
        self._authors_window = authors_window

    def page(self, owner: str, lowest: str, highest: str, limit: int, oldest_first: bool = False) -> HomePage:
        """Shown posts with lowest <= id <= highest: the `limit` newest (the
        `limit` oldest with `oldest_first`), newest first."""
        asked = limit + 1 + READ_AHEAD
        entries = self._store.entries(owner, lowest, highest, asked, oldest_first)
        items = self._store.page_items(owner, entries)
        hidden = items.suspended | items.unfollowing
        sources = [_home_source(entries, items.posts, hidden, asked)]
        # Follows the stream has not backfilled yet are read like accounts
        # merged at read, so a page right after a follow shows them (a few:
        # a burst of follows past that shows the rest a stream lag later).
        backfilling = sorted(items.backfilling - items.merged - hidden)[:BACKFILLING_READ_MAX]
        merged = sorted((items.merged - hidden) | set(backfilling))
        if merged:
            window = self._authors_window(merged, lowest, highest, limit, oldest_first)
            sources.append(_window_source(window, oldest_first))
        return _merge(sources, limit, oldest_first)


@dataclass(frozen=True)
class _Source:
    """Posts of one read in reading order, and, if the read stopped before
    its window's end, the id it stopped at: nothing past it is known."""

    posts: list[Post]
    stopped_at: str | None


def _home_source(entries: list[Entry], posts: dict[str, Post], hidden: frozenset[str], asked: int) -> _Source:
    shown = []
    for entry in entries:
        post = posts.get(entry.post_id)
        if post is not None and not post.is_deleted and post.author not in hidden:
            shown.append(post)
    return _Source(shown, entries[-1].post_id if len(entries) >= asked else None)


def _window_source(window: Window, oldest_first: bool) -> _Source:
    posts = sorted(window.posts, key=lambda post: post.id, reverse=not oldest_first)
    return _Source(posts, posts[-1].id if window.has_more and posts else None)


def _merge(sources: list[_Source], limit: int, oldest_first: bool) -> HomePage:
    """The sources merged by id, cut where the first one stopped (a post
    past that cut may be missing from another source: the next page reads
    from there)."""
    by_id = {post.id: post for source in sources for post in source.posts}
    ordered = sorted(by_id.values(), key=lambda post: post.id, reverse=not oldest_first)
    stops = [source.stopped_at for source in sources if source.stopped_at is not None]
    if stops:
        cut = min(stops) if oldest_first else max(stops)
        ordered = [post for post in ordered if (post.id <= cut if oldest_first else post.id >= cut)]
    page = ordered[:limit]
    has_more = len(ordered) > limit or bool(stops)
    return HomePage(sorted(page, key=lambda post: post.id, reverse=True), has_more)
