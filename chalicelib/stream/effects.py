"""What a run of post changes does to the derived items. Pure.

The counts `/status` shows move with the states a post enters and leaves
(from the images before and after each write, never by reading posts):

- `pending`: posts to send (pending, or sending after a claim);
- `deletes`: copies on the primary to delete (delete_pending, deleting);
- `dead_letters`: failed and delete_failed.

Feeds move with the posts a timeline shows: a post that appears (made, or
folded in from the spool) or disappears (deleted) bumps its author's marker
and the public marker; a delete also names its author as dirty for the
static feeds, and so does a post folded in from the spool. Replay transitions change no feed. Mirrored posts count for
none of this (the mirror's own state item versions them); they only reach
the home fan-out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chalicelib.core.models import (
    DEAD_LETTER_STATES,
    PENDING,
    SENDING,
    UPSTREAM_DELETE_STATES,
)
from chalicelib.stream.changes import PostChange

TO_SEND = frozenset({PENDING, SENDING})
COUNTED_STATES = {"pending": TO_SEND, "deletes": UPSTREAM_DELETE_STATES, "dead_letters": DEAD_LETTER_STATES}
# One transaction holds at most 100 items: the claim and the status shard
# take two, the rest are users and dirty-feed shards.
MAX_TOUCHED_PER_CHUNK = 98
FOLDED_SOURCE = "spool"  # maintenance.SPOOL_SOURCE: a post folded in from the S3 spool


@dataclass
class FeedLane:
    """A timeline's marker change: how many changes, and the newest post
    added and deleted among them (by id: records of different posts reach
    the consumer in no global order)."""

    changes: int = 0
    last_added: str | None = None
    last_deleted: str | None = None

    def add(self, change: PostChange) -> None:
        self.changes += 1
        post_id = change.post.id
        if change.appeared:
            self.last_added = max(self.last_added or "", post_id)
        else:
            self.last_deleted = max(self.last_deleted or "", post_id)


@dataclass
class AuthorEffect:
    lane: FeedLane = field(default_factory=FeedLane)
    posts: int = 0  # the change of the author's live post count


@dataclass
class Effects:
    """The non-idempotent part of a run of changes (counts, versions), which
    one claimed transaction applies exactly once, and the idempotent part."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_STATES, 0))
    public: FeedLane = field(default_factory=FeedLane)
    authors: dict[str, AuthorEffect] = field(default_factory=dict)
    # Authors whose feed lost a post (or got a folded one), with the ids (for the dirty shards).
    deleted: list[tuple[str, str]] = field(default_factory=list)
    # Pending posts that entered the backlog, and posts that left it.
    entered_backlog: list[str] = field(default_factory=list)
    left_backlog: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not any(self.counts.values()) and not self.public.changes and not self.authors

    def touched(self) -> int:
        """Items besides the claim and the status shard (the dirty shards
        are counted per delete: an upper bound)."""
        return len(self.authors) + len(self.deleted)


def effects_of(changes: Iterable[PostChange]) -> Effects:
    effects = Effects()
    for change in changes:
        add_change(effects, change)
    return effects


def add_change(effects: Effects, change: PostChange) -> None:
    if change.mirrored:
        return
    before, after = change.state_before(), change.state_after()
    for counter, states in COUNTED_STATES.items():
        effects.counts[counter] += (after in states) - (before in states)
    if after in TO_SEND and before not in TO_SEND:
        effects.entered_backlog.append(change.post.id)
    if before in TO_SEND and after not in TO_SEND:
        effects.left_backlog.append(change.post.id)
    if change.appeared or change.disappeared:
        effects.public.add(change)
        author = effects.authors.setdefault(change.post.author, AuthorEffect())
        author.lane.add(change)
        author.posts += 1 if change.appeared else -1
    if dirties_feed(change):
        effects.deleted.append((change.post.author, change.post.id))


def dirties_feed(change: PostChange) -> bool:
    """A change the feed publisher's checkpoints cannot see, so its author
    goes to the dirty set: a delete (it leaves the Public index), or a post
    folded in from the spool (its id, its time of acceptance, may be below
    the publisher's checkpoint)."""
    return change.disappeared or (change.appeared and change.post.source == FOLDED_SOURCE)


def chunks(changes: list[PostChange]) -> list[list[PostChange]]:
    """The changes cut, in order, into runs whose effects fit one
    transaction. The cut depends only on the changes, so a batch delivered
    again is cut the same way, and so is the same first part of a longer one."""
    runs: list[list[PostChange]] = [[]]
    authors: set[str] = set()
    deletes = 0
    for change in changes:
        shown = not change.mirrored and (change.appeared or change.disappeared)
        touched = len(authors | {change.post.author}) + deletes + dirties_feed(change) if shown else 0
        if runs[-1] and touched > MAX_TOUCHED_PER_CHUNK:
            runs.append([])
            authors, deletes = set(), 0
        runs[-1].append(change)
        if shown:
            authors.add(change.post.author)
            deletes += dirties_feed(change)
    return [run for run in runs if run]
