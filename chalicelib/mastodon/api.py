"""The Mastodon client API subset: the endpoints' logic over the same posts
and rules as the native API, the users and the follow graph.

Requests are parsed by `mastodon.forms` and answers rendered by
`mastodon.entities`; this module decides what to read and write. Posts are
read and written through the post service only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chalicelib.accounts.rate_limits import writes_limit
from chalicelib.accounts.store import User, UserStore
from chalicelib.config import Settings
from chalicelib.core.models import NewPost, Post, is_username
from chalicelib.core.pagination import parse_limit
from chalicelib.errors import FollowLimitReached, Forbidden, NotFound, StoreUnavailable, ValidationFailed
from chalicelib.mastodon import ids as mastodon_ids
from chalicelib.mastodon.entities import (
    AccountFacts,
    render_account,
    render_credential_account,
    render_instance_v1,
    render_instance_v2,
    render_relationship,
    render_status,
    render_unread_account,
)
from chalicelib.mastodon.first_screen import THUMBNAIL_PATH
from chalicelib.mastodon.follows import Follow, FollowCounts, FollowStore, parse_following_csv
from chalicelib.mastodon.forms import form_value, parse_status_form, query_flag
from chalicelib.mastodon.ids import Window
from chalicelib.mastodon.notifications import MENTION, NotificationStore, render_grouped, render_notification
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.accounts.kept_tokens import PrimaryCredential
    from chalicelib.home.timeline import HomeTimeline
    from chalicelib.posts.service import Created
    from chalicelib.posts.store import Page

ACCOUNTS_DEFAULT_LIMIT = 40
ACCOUNTS_MAX_LIMIT = 80


def not_found() -> NotFound:
    return NotFound("Record not found", code="record_not_found")


class MastodonPosts(Protocol):
    """What the Mastodon API needs of the post service."""

    def create_validated(self, author: str, new: NewPost, primary: PrimaryCredential | None = None) -> Created: ...

    def delete(self, author: str, post_id: str, primary: PrimaryCredential | None = None) -> None: ...

    def public_window(self, lowest: str, highest: str, limit: int, oldest_first: bool = False) -> Page: ...

    def authors_window(
        self, authors: list[str], lowest: str, highest: str, limit: int, oldest_first: bool = False
    ) -> Page: ...

    def posts_by_id(self, post_ids: list[str]) -> dict[str, Post]: ...

    def post_by_mastodon_id(self, lowest: str, highest: str) -> Post | None: ...


@dataclass(frozen=True)
class StatusPage:
    statuses: list[dict]
    has_more: bool
    newest_id: str | None
    oldest_id: str | None


@dataclass(frozen=True)
class NotificationsPage:
    notifications: list[dict]
    has_more: bool
    newest_id: str | None
    oldest_id: str | None

    def grouped(self) -> dict:
        """The page as /api/v2/notifications answers it."""
        return render_grouped(self.notifications)


class MastodonApi:
    """The Mastodon endpoints' logic. `origin` is the scheme and host the
    client used, for the URLs inside entities."""

    def __init__(
        self,
        posts: MastodonPosts,
        users: UserStore,
        follows: FollowStore,
        settings: Settings,
        clock: Callable[[], str],
        notifications: NotificationStore | None = None,
        home: HomeTimeline | None = None,
    ) -> None:
        self._posts = posts
        self._home = home
        self._notifications = notifications
        self._users = users
        self._follows = follows
        self._settings = settings
        self._clock = clock
        self._write_limit = writes_limit(settings.writes_per_minute)

    # -- the instance ----------------------------------------------------

    def instance_v1(self, domain: str, origin: str) -> dict:
        return render_instance_v1(domain, self._settings, origin + THUMBNAIL_PATH)

    def instance_v2(self, domain: str, origin: str) -> dict:
        return render_instance_v2(domain, self._settings, origin + THUMBNAIL_PATH)

    # -- statuses --------------------------------------------------------

    def create_status(
        self,
        author: str,
        form: dict[str, list[str]],
        key: str | None,
        origin: str,
        primary: PrimaryCredential | None = None,
    ) -> dict:
        """Store the status and return it. Once stored (in DynamoDB or the
        spool) it is answered 200 even if DynamoDB cannot be read for the
        account: a 503 would make the client post it again. `primary`: the
        primary's own token it was made with, kept for the replay."""
        new = parse_status_form(form, key, self._settings.max_post_chars)
        parent = form_value(form, "in_reply_to_id")
        parent_post = None
        if parent:
            parent_post = self._parent(parent)
            new = NewPost(new.text, parent_post.id, new.idempotency_key, new.spoiler_text, new.language)
        created = self._posts.create_validated(author, new, primary)
        if parent_post is not None and parent_post.author != author and not created.spooled:
            self._notify(parent_post.author, created.post)
        if not created.spooled:
            try:
                return self._render([created.post], origin)[0]
            except StoreUnavailable:
                pass  # stored all the same: answer from the post alone
        # Spooled: DynamoDB just refused a write, so its reads are not tried.
        account = render_unread_account(author, created.post, origin)
        return render_status(created.post, account, origin, parent_post.author if parent_post else None)

    def _notify(self, recipient: str, reply: Post) -> None:
        """A reply is a mention notification for the author it answers. The
        reply is stored already: a notification DynamoDB refuses is lost,
        rather than the post answered 503 (and sent again)."""
        if self._notifications is None:
            return
        try:
            self._notifications.add(recipient, reply.id, reply.author, reply.created_at)
        except StoreUnavailable:
            logger.warning("notification not written", extra={"recipient": recipient, "post_id": reply.id})

    def get_status(self, status_id: str, origin: str) -> dict:
        post, author = self._find_post(status_id)
        return self._render([post], origin, {post.author: author} if author else None)[0]

    def delete_status(self, author: str, status_id: str, origin: str, primary: PrimaryCredential | None = None) -> dict:
        """Delete and return the status with its source `text`, as Mastodon
        does (clients offer "delete and redraft" with it)."""
        post, user = self._find_post(status_id)
        if post.author != author:
            raise Forbidden("This action is not allowed", code="not_author")
        rendered = self._render([post], origin, {post.author: user} if user else None)[0]
        self._posts.delete(author, post.id, primary)
        return {**rendered, "text": post.text}

    def _parent(self, status_id: str) -> Post:
        try:
            return self._find_post(status_id)[0]
        except NotFound as missing:
            raise NotFound(
                "The post you are trying to reply to does not appear to exist.", code="unknown_parent"
            ) from missing

    def _find_post(self, status_id: str) -> tuple[Post, User | None]:
        """The live post with this Mastodon id, and its author's user item
        (read here to leave out a suspended author's post; the rendering
        reuses it): the id's shard holds it, so one query, two with the
        mirror (docs/DESIGN.md, "Mastodon ids"). NotFound otherwise."""
        number = mastodon_ids.parse_id(status_id)
        if number is None:
            raise not_found()
        post = self._posts.post_by_mastodon_id(mastodon_ids.lowest_ulid(number), mastodon_ids.highest_ulid(number))
        if post is None or post.is_deleted:
            raise not_found()
        author = self._users.get(post.author)
        if author is not None and author.suspended:
            raise not_found()
        return post, author

    # -- timelines -------------------------------------------------------

    def public_timeline(self, params: dict[str, str], origin: str) -> StatusPage:
        window = mastodon_ids.window_from_params(params)
        if query_flag(params, "remote") or query_flag(params, "only_media"):
            return StatusPage([], False, None, None)
        return self._page(self._posts.public_window(*_bounds(window)), window, origin)

    def home_timeline(self, username: str, params: dict[str, str], origin: str) -> StatusPage:
        """The user's own posts and those of everyone they follow, newest
        first: the user's fanned-out home, with the very followed accounts
        merged at read (docs/DESIGN.md, "Follow graph and home timeline")."""
        window = mastodon_ids.window_from_params(params)
        if self._home is None:
            raise StoreUnavailable("no home timelines wired")
        return self._page(self._home.page(username, *_bounds(window)), window, origin)

    def account_statuses(self, account_id: str, params: dict[str, str], origin: str) -> StatusPage:
        window = mastodon_ids.window_from_params(params)
        user = self._user(account_id)
        # A suspended account's statuses are gone (Mastodon answers [] too).
        if user.suspended or query_flag(params, "pinned") or query_flag(params, "only_media"):
            return StatusPage([], False, None, None)
        return self._page(self._posts.authors_window([user.username], *_bounds(window)), window, origin)

    def _page(self, page: Page, window: Window, origin: str) -> StatusPage:
        statuses = self._render(page.posts, origin)
        newest = statuses[0]["id"] if statuses else None
        oldest = statuses[-1]["id"] if statuses else None
        # Older posts exist below a full newest-first page; an oldest-first
        # (min_id) page always has older posts below it: the min_id itself.
        has_older = page.has_more if not window.oldest_first else bool(statuses)
        return StatusPage(statuses, has_older, newest, oldest)

    def _render(self, posts: list[Post], origin: str, known: dict[str, User] | None = None) -> list[dict]:
        authors = list(dict.fromkeys(post.author for post in posts))
        accounts = self._accounts(authors, origin, known)
        parents = self._posts.posts_by_id([post.in_reply_to for post in posts if post.in_reply_to])
        rendered = []
        for post in posts:
            parent = parents.get(post.in_reply_to) if post.in_reply_to else None
            # A mirrored post may arrive before its author's account does.
            account = accounts.get(post.author) or render_unread_account(post.author, post, origin)
            rendered.append(render_status(post, account, origin, parent.author if parent else None))
        return rendered

    # -- notifications ---------------------------------------------------

    def notifications(
        self, username: str, params: dict[str, str], types: list[str], exclude_types: list[str], origin: str
    ) -> NotificationsPage:
        """The user's notifications (replies to their posts), newest first,
        paged by the same id windows as the timelines."""
        window = mastodon_ids.window_from_params(params)
        if self._notifications is None or (types and MENTION not in types) or MENTION in exclude_types:
            return NotificationsPage([], False, None, None)
        page = self._notifications.window(username, *_bounds(window))
        post_ids = page.post_ids[::-1] if window.oldest_first else page.post_ids
        posts = self._posts.posts_by_id(post_ids)
        replies = [posts[post_id] for post_id in post_ids if post_id in posts and not posts[post_id].is_deleted]
        notifications = [render_notification(status) for status in self._render(replies, origin)]
        newest = mastodon_ids.mastodon_id(post_ids[0]) if post_ids else None
        oldest = mastodon_ids.mastodon_id(post_ids[-1]) if post_ids else None
        has_older = page.has_more if not window.oldest_first else bool(post_ids)
        return NotificationsPage(notifications, has_older, newest, oldest)

    # -- accounts --------------------------------------------------------

    def account(self, account_id: str, origin: str) -> dict:
        user = self._user(account_id)
        return self._accounts([user.username], origin, {user.username: user})[user.username]

    def verify_credentials(self, username: str, origin: str) -> dict:
        return render_credential_account(self.account(username, origin))

    def lookup(self, acct: str | None, origin: str) -> dict:
        username, _, domain = (acct or "").removeprefix("@").partition("@")
        local = self._settings.instance_domain
        if "@" in domain or (domain and local and domain.lower() != local.lower()):
            raise not_found()  # user@domain has one @ at most: alice@evil@x is nobody
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
        self._follows.follow(
            Follow(follower, target.username), self._clock(), self._write_limit.charge(follower), home_at_once=True
        )
        return self.relationship(follower, target.username)

    def unfollow(self, follower: str, account_id: str) -> dict:
        target = self._user(account_id)
        self._follows.unfollow(follower, target.username, self._write_limit.charge(follower), home_at_once=True)
        return self.relationship(follower, target.username)

    def relationship(self, viewer: str, account_id: str) -> dict:
        target = self._user(account_id)
        follow = self._follows.get(viewer, target.username)
        return render_relationship(target.username, follow, self._follows.follows_back(viewer, target.username))

    def relationships(self, viewer: str, account_ids: list[str]) -> list[dict]:
        """The viewer's Relationship with each account named, in order;
        unknown accounts are left out, as Mastodon does."""
        known = [name for name in dict.fromkeys(account_ids[:ACCOUNTS_MAX_LIMIT]) if self._known(name)]
        return [self.relationship(viewer, name) for name in known]

    def _known(self, account_id: str) -> bool:
        return is_username(account_id) and self._users.get(account_id) is not None

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
        """Account entities for several users: one BatchGetItem of the user
        items not known already (each carries its post count and newest
        post) and one of the follow counts."""
        if not usernames:
            return {}
        users = dict(known or {})
        missing = [name for name in usernames if name not in users]
        if missing:
            users.update(self._users.get_many(missing))
        counts = self._follows.counts(usernames)
        return {
            name: render_account(users[name], _facts(users[name], counts[name]), origin)
            for name in usernames
            if users.get(name) is not None
        }


def _facts(user: User, counts: FollowCounts) -> AccountFacts:
    return AccountFacts(user.posts_count, user.last_post_id, counts.followers, counts.following)


def _bounds(window: Window) -> tuple[str, str, int, bool]:
    """A window's arguments to the post service's window reads."""
    return window.lowest, window.highest, window.limit, window.oldest_first
