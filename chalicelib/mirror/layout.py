"""Where mirrored things live in the table, and their ids. Pure.

A mirrored post is keyed in the base table by its public shard,
`MIRROR#<s> / <id>`, and carries only the ByAuthor index key. So one post
costs 2 write units (the base item and one index entry, under 1 KB), not
the 3 of a post written here (ByAuthor and Public). Author and home
timelines read ByAuthor as before; the public timeline and the Mastodon
status-by-id read the `MIRROR#<s>` partitions beside the Public index and
merge (docs/DESIGN.md, "Warm standby").
"""

from __future__ import annotations

import hashlib

from chalicelib.core import ids
from chalicelib.core.models import MIRRORED
from chalicelib.mirror.changes import PostChange

SOURCE = "mirror"
MIRROR_PREFIX = "MIRROR#"
UPSTREAM_PREFIX = "UPSTREAM#"
_RANDOM_BITS = 80
_DAY_SECONDS = 86_400


def mirrored_post_id(created_at: str, upstream_id: str) -> str:
    """A ULID whose time is the primary's created_at and whose random part
    comes from the primary's id: re-applying a change writes the same item,
    and mirrored ids sort by created_at among the ids made here."""
    digest = int.from_bytes(hashlib.sha256(upstream_id.encode("ascii")).digest()[:10], "big")
    return ids.ulid_from_value((ids.millis_from_iso(created_at) << _RANDOM_BITS) | digest)


def mirror_partition(shard: int) -> str:
    return f"{MIRROR_PREFIX}{shard}"


def upstream_marker_pk(upstream_id: str) -> str:
    """The item the replay writes when the primary confirms a post of ours,
    so the mirror knows that post when the feed brings it back."""
    return f"{UPSTREAM_PREFIX}{upstream_id}"


def expires_at(created_at: str, retention_days: int) -> int:
    """The TTL (epoch seconds) of a mirrored post."""
    return ids.millis_from_iso(created_at) // 1000 + retention_days * _DAY_SECONDS


def mirrored_post_record(change: PostChange, post_id: str, retention_days: int) -> dict:
    """The attributes of a mirrored post, as `Post.from_record` reads them,
    plus its TTL. Only what a timeline shows: every byte counts toward the
    1 KB write unit."""
    return {
        "id": post_id,
        "author": change.author,
        "text": change.text,
        "created_at": change.created_at,
        "state": MIRRORED,
        "upstream_id": change.upstream_id,
        "source": SOURCE,
        "expires_at": expires_at(change.created_at, retention_days),
    }
