"""The Mastodon entities Lifeboat answers with, rendered from plain values:
Status, Account (and CredentialAccount), Relationship and Instance, as
https://docs.joinmastodon.org/entities/ describes them.

Pure: no store, no AWS, no HTTP. Account ids are usernames (Mastodon ids are
opaque strings); status ids are `chalicelib.mastodon.ids`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.core import ids
from chalicelib.core.models import FAILED, MIRRORED, PENDING, REPLAYED, SENDING
from chalicelib.mastodon import ids as mastodon_ids

if TYPE_CHECKING:
    from chalicelib.accounts.store import User
    from chalicelib.config import Settings
    from chalicelib.core.models import Post
    from chalicelib.mastodon.follows import Follow

COMPATIBLE_API_VERSION = "4.3.0"
LIFEBOAT_VERSION = "0.1.0"
# Mastodon.py and other clients read the first word as the API level.
VERSION = f"{COMPATIBLE_API_VERSION} (compatible; Lifeboat {LIFEBOAT_VERSION})"
_PARAGRAPH_BREAK_RE = re.compile(r"\n{2,}")


def content_html(text: str) -> str:
    """Plain text as Mastodon renders it: escaped, paragraphs on blank lines,
    <br /> on single newlines."""
    paragraphs = _PARAGRAPH_BREAK_RE.split(text.strip("\n"))
    return "".join(f"<p>{html.escape(part, quote=True).replace(chr(10), '<br />')}</p>" for part in paragraphs)


@dataclass(frozen=True)
class AccountFacts:
    """What an Account entity needs beyond the user item; a count not read
    is 0."""

    statuses_count: int = 0
    last_status_id: str | None = None
    followers_count: int = 0
    following_count: int = 0


def render_account(user: User, facts: AccountFacts, origin: str) -> dict:
    account = _account(user.username, user.created_at, facts, origin, user.display_name)
    # Mastodon's serializer adds `suspended` (only when true) and blanks
    # what the account said of itself.
    return {**account, "suspended": True, "display_name": ""} if user.suspended else account


def _account(name: str, created_at: str, facts: AccountFacts, origin: str, display_name: str | None = None) -> dict:
    last = facts.last_status_id
    return {
        "id": name,
        "username": name,
        "acct": name,
        "display_name": display_name or name,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "indexable": False,
        "group": False,
        "created_at": created_at[:10] + "T00:00:00.000Z",
        "note": "",
        "url": f"{origin}/@{name}",
        "uri": f"{origin}/users/{name}",
        "avatar": f"{origin}/avatars/original/missing.png",
        "avatar_static": f"{origin}/avatars/original/missing.png",
        "header": f"{origin}/headers/original/missing.png",
        "header_static": f"{origin}/headers/original/missing.png",
        "followers_count": facts.followers_count,
        "following_count": facts.following_count,
        "statuses_count": facts.statuses_count,
        "last_status_at": ids.iso_from_millis(ids.ulid_millis(last))[:10] if last else None,
        "hide_collections": False,
        "noindex": False,
        "emojis": [],
        "roles": [],
        "fields": [],
    }


def render_unread_account(username: str, newest: Post, origin: str) -> dict:
    """A valid Account entity when DynamoDB cannot be read (a post just
    went to the spool): the user item is out of reach, so the account's
    creation date is given as the day of its newest post (it existed by
    then) and its counts as 0 until the next read."""
    return _account(username, newest.created_at, AccountFacts(last_status_id=newest.id), origin)


# Mastodon's role of every user (@everyone), with no permissions: Lifeboat
# grants none through the client API.
EVERYONE_ROLE = {"id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": False}


def render_credential_account(account: dict) -> dict:
    source = {
        "privacy": "public",
        "sensitive": False,
        "language": "",
        "note": "",
        "fields": [],
        "follow_requests_count": 0,
        "hide_collections": False,
        "discoverable": True,
        "indexable": False,
    }
    return {**account, "source": source, "role": EVERYONE_ROLE}


def render_status(post: Post, account: dict, origin: str, parent_author: str | None) -> dict:
    status_id = mastodon_ids.mastodon_id(post.id)
    return {
        "id": status_id,
        "uri": f"{origin}/users/{post.author}/statuses/{status_id}",
        "url": f"{origin}/@{post.author}/{status_id}",
        "created_at": post.created_at,
        "edited_at": None,
        "account": account,
        "content": content_html(post.text),
        "visibility": "public",
        "sensitive": bool(post.spoiler_text),
        "spoiler_text": post.spoiler_text,
        "media_attachments": [],
        "application": None,
        "mentions": [],
        "tags": [],
        "emojis": [],
        "reblogs_count": 0,
        "favourites_count": 0,
        "replies_count": 0,
        "in_reply_to_id": mastodon_ids.mastodon_id(post.in_reply_to) if post.in_reply_to else None,
        "in_reply_to_account_id": parent_author if post.in_reply_to else None,
        "reblog": None,
        "poll": None,
        "card": None,
        "language": post.language,
        "text": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "filtered": [],
        "lifeboat": render_delivery(post),
    }


# Where a post stands on its way to the primary, in the web client's words.
# A Lifeboat extension of the Status entity under its own key, as Pleroma's
# `pleroma` object is: clients ignore keys they don't know.
_DELIVERY = {PENDING: "waiting", SENDING: "waiting", REPLAYED: "delivered", MIRRORED: "delivered", FAILED: "failed"}


def render_delivery(post: Post) -> dict:
    delivery = _DELIVERY.get(post.state, "waiting")
    return {
        "post_id": post.id,
        "delivery": delivery,
        "failure_reason": post.failure_reason if delivery == "failed" else None,
    }


def render_relationship(username: str, follow: Follow | None, followed_by: bool) -> dict:
    return {
        "id": username,
        "following": follow is not None,
        "showing_reblogs": follow.show_reblogs if follow else False,
        "notifying": follow.notify if follow else False,
        "languages": list(follow.languages) if follow and follow.languages else None,
        "followed_by": followed_by,
        "blocking": False,
        "blocked_by": False,
        "muting": False,
        "muting_notifications": False,
        "requested": False,
        "requested_by": False,
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }


def render_instance_v1(domain: str, settings: Settings, thumbnail_url: str) -> dict:
    return {
        "uri": domain,
        "title": "Lifeboat",
        "short_description": "The fallback backend: posts are kept here while the primary is down.",
        "description": "Lifeboat accepts posts while the primary service is down and reinserts them later.",
        "email": settings.contact_email,
        "version": VERSION,
        # No streaming: null is what Elk, Phanpy and masto.js skip without
        # trying to connect (docs/DESIGN.md, "Streaming").
        "urls": {"streaming_api": None},
        "stats": {"user_count": 0, "status_count": 0, "domain_count": 1},
        "thumbnail": thumbnail_url,
        "languages": ["en"],
        "registrations": False,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": _configuration(settings),
        "contact_account": None,
        "rules": [],
    }


def render_instance_v2(domain: str, settings: Settings, thumbnail_url: str) -> dict:
    return {
        "domain": domain,
        "title": "Lifeboat",
        "version": VERSION,
        "source_url": "https://github.com/aws/chalice",
        "description": "Lifeboat accepts posts while the primary service is down and reinserts them later.",
        "usage": {"users": {"active_month": 0}},
        "thumbnail": {"url": thumbnail_url, "blurhash": None, "versions": {}},
        "icon": [],
        "languages": ["en"],
        "configuration": {**_configuration(settings), "urls": {"streaming": None}, "translation": {"enabled": False}},
        "registrations": {"enabled": False, "approval_required": False, "message": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": settings.contact_email, "account": None},
        "rules": [],
    }


def _configuration(settings: Settings) -> dict:
    return {
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
        "statuses": {
            "max_characters": settings.max_post_chars,
            "max_media_attachments": 0,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": [],
            "image_size_limit": 0,
            "image_matrix_limit": 0,
            "video_size_limit": 0,
            "video_frame_rate_limit": 0,
            "video_matrix_limit": 0,
        },
        "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0},
    }
