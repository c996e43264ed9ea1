"""The posts per author and minute, as the rate limit reads them. Pure.

Every post that appears (made, or folded in from the spool) is counted in
its author's window, the minute of its id, as its tag
(`accounts.windows`). The store adds the tags to a string set:
a record delivered again, or records of several shards in any order, end
with the same set, so this write needs no claim and stays out of the runs'
transactions (docs/DESIGN.md, "The stream").
"""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.accounts.windows import post_tag, post_window
from chalicelib.stream.changes import PostChange

# (author, window) -> the tags of its posts seen in this batch
PostWindowTags = dict[tuple[str, int], set[str]]


def posts_by_window(changes: Iterable[PostChange]) -> PostWindowTags:
    windows: PostWindowTags = {}
    for change in changes:
        if change.appeared and not change.mirrored:
            post = change.post
            windows.setdefault((post.author, post_window(post.id)), set()).add(post_tag(post.id))
    return windows
