"""The Mastodon client API subset: request parsing and entity rendering over
the same store and rules as the native API.

Pure where it can be: rendering and parsing take plain values; `MastodonApi`
composes the post service, the stores and the follow graph. Entities follow
https://docs.joinmastodon.org/entities/ (Status, Account, Relationship,
Instance). Account ids are usernames (Mastodon ids are opaque strings);
status ids are `chalicelib.mastodon.ids`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chalicelib.accounts.rate_limits import writes_limit
from chalicelib.accounts.store import User, UserStore
from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.models import NewPost, Post, is_username, normalise_text, parse_idempotency_key
from chalicelib.core.pagination import parse_limit
from chalicelib.core.parsing import flag
from chalicelib.errors import FollowLimitReached, Forbidden, NotFound, StoreUnavailable, ValidationFailed
from chalicelib.mastodon import ids as mastodon_ids
from chalicelib.mastodon.follows import Follow, FollowCounts, FollowStore, parse_following_csv
from chalicelib.mastodon.ids import Window
from chalicelib.posts.service import PostService
from chalicelib.posts.store import Page, PostStore

COMPATIBLE_API_VERSION = "4.3.0"
LIFEBOAT_VERSION = "0.1.0"
# Mastodon.py and other clients read the first word as the API level.
VERSION = f"{COMPATIBLE_API_VERSION} (compatible; Lifeboat {LIFEBOAT_VERSION})"
ACCOUNTS_DEFAULT_LIMIT = 40
ACCOUNTS_MAX_LIMIT = 80
# Fields Mastodon accepts that Lifeboat cannot honour: refused, never dropped.
UNSUPPORTED_STATUS_FIELDS = ("media_ids", "poll", "scheduled_at", "quoted_status_id", "quote_id", "media_attributes")
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}")
_PARAGRAPH_BREAK_RE = re.compile(r"\n{2,}")


def not_found() -> NotFound:
    return NotFound("Record not found", code="record_not_found")


# -- rendering (pure) -----------------------------------------------------------


def content_html(text: str) -> str:
    """Plain text as Mastodon renders it: escaped, paragraphs on blank lines,
    <br /> on single newlines."""
    paragraphs = _PARAGRAPH_BREAK_RE.split(text.strip("\n"))
    return "".join(f"<p>{html.escape(part, quote=True).replace(chr(10), '<br />')}</p>" for part in paragraphs)


@dataclass(frozen=True)
class AccountFacts:
    """What an Account entity needs beyond the user item."""

    counts: FollowCounts
    statuses_count: int
    last_status_id: str | None


def render_account(user: User, facts: AccountFacts, origin: str) -> dict:
    name = user.username
    last = facts.last_status_id
    return {
        "id": name,
        "username": name,
        "acct": name,
        "display_name": name,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "indexable": False,
        "group": False,
        "created_at": user.created_at[:10] + "T00:00:00.000Z",
        "note": "",
        "url": f"{origin}/@{name}",
        "uri": f"{origin}/users/{name}",
        "avatar": f"{origin}/avatars/original/missing.png",
        "avatar_static": f"{origin}/avatars/original/missing.png",
        "header": f"{origin}/headers/original/missing.png",
        "header_static": f"{origin}/headers/original/missing.png",
        "followers_count": facts.counts.followers,
        "following_count": facts.counts.following,
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
    user = User(username=username, created_at=newest.created_at, token_hash=None, token_issued_at=None)
    return render_account(user, AccountFacts(FollowCounts(), 0, newest.id), origin)


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
    return {**account, "source": source}


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


def render_instance_v1(domain: str, settings: Settings, admin_email: str = "") -> dict:
    return {
        "uri": domain,
        "title": "Lifeboat",
        "short_description": "The fallback backend: posts are kept here while the primary is down.",
        "description": "Lifeboat accepts posts while the primary service is down and reinserts them later.",
        "email": admin_email,
        "version": VERSION,
        "urls": {"streaming_api": None},
        "stats": {"user_count": 0, "status_count": 0, "domain_count": 1},
        "thumbnail": None,
        "languages": ["en"],
        "registrations": False,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": _configuration(settings),
        "contact_account": None,
        "rules": [],
    }


def render_instance_v2(domain: str, settings: Settings) -> dict:
    return {
        "domain": domain,
        "title": "Lifeboat",
        "version": VERSION,
        "source_url": "https://github.com/aws/chalice",
        "description": "Lifeboat accepts posts while the primary service is down and reinserts them later.",
        "usage": {"users": {"active_month": 0}},
        "thumbnail": {"url": ""},
        "icon": [],
        "languages": ["en"],
        "configuration": {**_configuration(settings), "urls": {"streaming": None}, "translation": {"enabled": False}},
        "registrations": {"enabled": False, "approval_required": False, "message": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": "", "account": None},
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
        "media_attachments": {"supported_mime_types": [], "image_size_limit": 0, "video_size_limit": 0},
        "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0},
    }


# -- request parsing (pure) -------------------------------------------------------


def parse_status_form(form: dict[str, list[str]], idempotency_key: str | None, max_chars: int) -> NewPost:
    """The fields of `POST /api/v1/statuses`, form or JSON, as a NewPost.

    Raises ValidationFailed (422) for what Lifeboat cannot store: media,
    polls, scheduling, quotes, and visibility other than public (every
    Lifeboat post is public and replayed as such). Fields Mastodon does not
    know are ignored, as Mastodon does, and so are empty ones: JSON clients
    send `"media_ids": []` or `"poll": null` for none.
    """
    names = {name.removesuffix("[]").split("[", 1)[0] for name, values in form.items() if _given(values)}
    unsupported = sorted(names & set(UNSUPPORTED_STATUS_FIELDS))
    if unsupported:
        raise ValidationFailed(
            f"Validation failed: {', '.join(unsupported)} not supported by this server", code="unsupported_field"
        )
    visibility = _one(form, "visibility") or "public"
    if visibility != "public":
        raise ValidationFailed(
            f"Validation failed: visibility {visibility!r} not supported; only public posts are kept",
            code="unsupported_visibility",
        )
    language = _one(form, "language") or None
    if language is not None and not _LANGUAGE_RE.fullmatch(language):
        raise ValidationFailed("Validation failed: language must be an ISO 639 code", code="invalid_language")
    spoiler = (_one(form, "spoiler_text") or "").strip()
    text = _one(form, "status")
    if text is None or not text.strip():
        raise ValidationFailed("Validation failed: Text can't be blank", code="empty_text")
    text = normalise_text(text, max(1, max_chars - len(spoiler)))
    if spoiler:
        normalise_text(spoiler, max_chars)
    return NewPost(
        text=text,
        in_reply_to=None,
        idempotency_key=parse_idempotency_key(idempotency_key),
        spoiler_text=spoiler,
        language=language,
    )


def _given(values: list) -> bool:
    return any(value not in (None, "", [], {}) for value in values)


def _one(form: dict[str, list[str]], name: str) -> str | None:
    """The field's last value as text; None when absent. A JSON object or
    nested list is refused, not turned into its Python repr."""
    values = form.get(name)
    if not values:
        return None
    value = values[-1]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, dict | list):
        raise ValidationFailed(f"Validation failed: {name} must be text", code="invalid_field")
    return str(value)


def is_true(form: dict[str, list[str]], name: str) -> bool:
    value = _one(form, name)
    return flag(value, lenient=True)


# -- the service ---------------------------------------------------------------


@dataclass(frozen=True)
class StatusPage:
    statuses: list[dict]
    has_more: bool
    newest_id: str | None
    oldest_id: str | None


class MastodonApi:
    """The Mastodon endpoints' logic. `origin` is the scheme and host the
    client used, for the URLs inside entities."""

    def __init__(
        self,
        posts: PostService,
        store: PostStore,
        users: UserStore,
        follows: FollowStore,
        settings: Settings,
        clock: Callable[[], str],
    ) -> None:
        self._posts = posts
        self._store = store
        self._users = users
        self._follows = follows
        self._settings = settings
        self._clock = clock
        self._write_limit = writes_limit(settings.writes_per_minute)

    # -- the instance ----------------------------------------------------

    def instance_v1(self, domain: str) -> dict:
        return render_instance_v1(domain, self._settings)

    def instance_v2(self, domain: str) -> dict:
        return render_instance_v2(domain, self._settings)

    # -- statuses --------------------------------------------------------

    def create_status(self, author: str, form: dict[str, list[str]], key: str | None, origin: str) -> dict:
        """Store the status and return it. Once stored (in DynamoDB or the
        spool) it is answered 200 even if DynamoDB cannot be read for the
        account: a 503 would make the client post it again."""
        new = parse_status_form(form, key, self._settings.max_post_chars)
        parent = _one(form, "in_reply_to_id")
        parent_post = None
        if parent:
            parent_post = self._find_post(parent)
            if parent_post is None:
                raise NotFound("The post you are trying to reply to does not appear to exist.", code="unknown_parent")
            new = NewPost(new.text, parent_post.id, new.idempotency_key, new.spoiler_text, new.language)
        created = self._posts.create_validated(author, new)
        if not created.spooled:
            try:
                return self._render([created.post], origin)[0]
            except StoreUnavailable:
                pass  # stored all the same: answer from the post alone
        # Spooled: DynamoDB just refused a write, so its reads are not tried.
        account = render_unread_account(author, created.post, origin)
        return render_status(created.post, account, origin, parent_post.author if parent_post else None)

    def get_status(self, status_id: str, origin: str) -> dict:
        post = self._find_post(status_id)
        if post is None:
            raise not_found()
        return self._render([post], origin)[0]

    def delete_status(self, author: str, status_id: str, origin: str) -> dict:
        """Delete and return the status with its source `text`, as Mastodon
        does (clients offer "delete and redraft" with it)."""
        post = self._find_post(status_id)
        if post is None:
            raise not_found()
        if post.author != author:
            raise Forbidden("This action is not allowed", code="not_author")
        rendered = self._render([post], origin)[0]
        self._posts.delete(author, post.id)
        return {**rendered, "text": post.text}

    def _find_post(self, status_id: str) -> Post | None:
        """The live post with this Mastodon id: one query per public shard
        over the id's ULID range (docs/DESIGN.md, "Mastodon ids")."""
        number = mastodon_ids.parse_id(status_id)
        if number is None:
            return None
        page = self._store.posts_in_window(
            self._store.public_partitions(),
            mastodon_ids.lowest_ulid(number),
            mastodon_ids.highest_ulid(number),
            limit=1,
            oldest_first=True,
        )
        post = page.posts[0] if page.posts else None
        return post if post is not None and not post.is_deleted else None

    # -- timelines -------------------------------------------------------

    def public_timeline(self, params: dict[str, str], origin: str) -> StatusPage:
        window = mastodon_ids.window_from_params(params)
        if _flag(params, "remote") or _flag(params, "only_media"):
            return StatusPage([], False, None, None)
        return self._page(self._store.public_partitions(), window, origin)

    def home_timeline(self, username: str, params: dict[str, str], origin: str) -> StatusPage:
        """The user's own posts and those of everyone they follow, merged
        newest first: fan-out on read (docs/DESIGN.md, "Home timeline")."""
        window = mastodon_ids.window_from_params(params)
        authors = [username, *self._follows.following(username)]
        return self._page([self._store.author_partition(name) for name in dict.fromkeys(authors)], window, origin)

    def account_statuses(self, account_id: str, params: dict[str, str], origin: str) -> StatusPage:
        window = mastodon_ids.window_from_params(params)
        user = self._user(account_id)
        if _flag(params, "pinned") or _flag(params, "only_media"):
            return StatusPage([], False, None, None)
        return self._page([self._store.author_partition(user.username)], window, origin)

    def _page(self, partitions: list[tuple[str, str]], window: Window, origin: str) -> StatusPage:
        page: Page = self._store.posts_in_window(
            partitions, window.lowest, window.highest, window.limit, window.oldest_first
        )
        statuses = self._render(page.posts, origin)
        newest = statuses[0]["id"] if statuses else None
        oldest = statuses[-1]["id"] if statuses else None
        # Older posts exist below a full newest-first page; an oldest-first
        # (min_id) page always has older posts below it: the min_id itself.
        has_older = page.has_more if not window.oldest_first else bool(statuses)
        return StatusPage(statuses, has_older, newest, oldest)

    def _render(self, posts: list[Post], origin: str) -> list[dict]:
        authors = list(dict.fromkeys(post.author for post in posts))
        accounts = self._accounts(authors, origin)
        parents = self._store.get_posts([post.in_reply_to for post in posts if post.in_reply_to])
        rendered = []
        for post in posts:
            parent = parents.get(post.in_reply_to) if post.in_reply_to else None
            rendered.append(render_status(post, accounts[post.author], origin, parent.author if parent else None))
        return rendered

    # -- accounts --------------------------------------------------------

    def account(self, account_id: str, origin: str) -> dict:
        user = self._user(account_id)
        return self._accounts([user.username], origin, {user.username: user})[user.username]

    def verify_credentials(self, username: str, origin: str) -> dict:
        return render_credential_account(self.account(username, origin))

    def lookup(self, acct: str | None, origin: str) -> dict:
        username, _, domain = (acct or "").removeprefix("@").partition("@")
        local = self._settings.instance_domain
        if domain and local and domain.lower() != local.lower():
            raise not_found()
        return self.account(username.lower(), origin)

    def following(self, account_id: str, params: dict[str, str], origin: str) -> tuple[list[dict], str | None]:
        """One page of whom the account follows, by username; the second
        value is the cursor for the next page (Link rel=next max_id)."""
        user = self._user(account_id)
        limit = parse_limit(params.get("limit"), ACCOUNTS_DEFAULT_LIMIT, ACCOUNTS_MAX_LIMIT, clamp=True)
        after = params.get("max_id") or None
        if after is not None and not is_username(after):
            # It becomes a key condition: only an account id may get there.
            raise ValidationFailed("max_id must be an account id", code="invalid_id")
        names = self._follows.following(user.username, after=after, limit=limit + 1)
        shown = names[:limit]
        accounts = self._accounts(shown, origin)
        return [accounts[name] for name in shown if name in accounts], (shown[-1] if len(names) > limit else None)

    def follow(self, follower: str, account_id: str) -> dict:
        target = self._user(account_id)
        if target.username == follower:
            raise ValidationFailed("Validation failed: you cannot follow yourself", code="self_follow")
        self._follows.follow(Follow(follower, target.username), self._clock(), self._write_limit.charge(follower))
        return self.relationship(follower, target.username)

    def unfollow(self, follower: str, account_id: str) -> dict:
        target = self._user(account_id)
        self._follows.unfollow(follower, target.username, self._write_limit.charge(follower))
        return self.relationship(follower, target.username)

    def relationship(self, viewer: str, account_id: str) -> dict:
        target = self._user(account_id)
        follow = self._follows.get(viewer, target.username)
        return render_relationship(target.username, follow, self._follows.follows_back(viewer, target.username))

    def import_following(self, username: str, csv_text: str) -> dict:
        """Follow every account of a `following_accounts.csv` export. Rows
        naming unknown or remote accounts are reported, not fatal; already
        followed accounts are left as they are. An import that would pass
        MAX_FOLLOWING is refused whole (FollowLimitReached), before any
        follow, rather than stopped part-way. Imports are the admin's, so
        they do not count against the user's write limit."""
        user = self._user(username)
        report: dict = {"followed": 0, "already_following": 0, "skipped": []}
        follows = []
        for row in parse_following_csv(csv_text, self._settings.instance_domain):
            target = self._users.get(row.username) if row.username and is_username(row.username) else None
            problem = row.problem or (None if target else f"line {row.line}: no account {row.username!r}")
            if problem is None and target.username == user.username:
                problem = f"line {row.line}: an account cannot follow itself"
            if problem:
                report["skipped"].append(problem)
                continue
            follows.append(Follow(user.username, target.username, **row.follow_options))
        self._require_room_for(user.username, follows)
        for follow in follows:
            added = self._follows.follow(follow, self._clock())
            report["followed" if added else "already_following"] += 1
        return report

    def _require_room_for(self, username: str, follows: list[Follow]) -> None:
        # A follow racing the import can still fill the room meanwhile; the
        # follow transaction's own condition then stops the import there.
        already = set(self._follows.following(username))
        new = {follow.followee for follow in follows} - already
        if len(already) + len(new) > self._settings.max_following:
            raise FollowLimitReached(self._settings.max_following)

    def _user(self, account_id: str) -> User:
        user = self._users.get(account_id) if is_username(account_id) else None
        if user is None:
            raise not_found()
        return user

    def _accounts(self, usernames: list[str], origin: str, known: dict[str, User] | None = None) -> dict[str, dict]:
        """Account entities for several users: one GetItem per user (in
        parallel; the user item carries the post count and newest post) and
        one BatchGetItem for the follow counts."""
        if not usernames:
            return {}
        users = dict(known or {})
        missing = [name for name in usernames if name not in users]
        with ThreadPoolExecutor(max_workers=min(len(usernames), 16)) as pool:
            users.update(zip(missing, pool.map(self._users.get, missing), strict=True))
        counts = self._follows.counts(usernames)
        return {
            name: render_account(
                users[name], AccountFacts(counts[name], users[name].posts_count, users[name].last_post_id), origin
            )
            for name in usernames
            if users.get(name) is not None
        }


def _flag(params: dict[str, str], name: str) -> bool:
    return flag(params.get(name), lenient=True)
