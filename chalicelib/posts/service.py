"""The post service: the write path's rules, reads, and /status.

It owns the decisions (idempotency, spooling, authorization on each post a
request names); the adapters it is given own the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chalicelib.accounts.kept_tokens import Keeping, KeptTokenDiffers, PrimaryCredential, SealedToken
from chalicelib.accounts.rate_limits import Charge, posts_limit, writes_limit
from chalicelib.accounts.store import UserStore
from chalicelib.config import Settings
from chalicelib.core import ids
from chalicelib.core.clock import utc_now_iso
from chalicelib.core.models import REPLAYED, SENDING, NewPost, Post, is_username, parse_new_post
from chalicelib.core.pagination import decode_cursor, encode_cursor, parse_limit
from chalicelib.errors import (
    Conflict,
    DuplicateIdempotencyKey,
    Forbidden,
    NotFound,
    PostExists,
    RateLimited,
    StateChanged,
    StoreUnavailable,
    Unavailable,
    ValidationFailed,
)
from chalicelib.observability import count, logger
from chalicelib.posts.archive import Spool
from chalicelib.posts.store import Page, PostStore

SPOOL_RETRY_AFTER_SECONDS = 5
_DELETE_ATTEMPTS = 3


@dataclass(frozen=True)
class Created:
    post: Post
    # True when DynamoDB refused the write and the post waits in the S3 spool.
    spooled: bool = False
    # True when an Idempotency-Key matched an earlier request: the post is
    # that request's (nothing to do with the replay's "replayed" state).
    repeated: bool = False


class Sealer(Protocol):
    """KMS for the primary token a post was made with (`upstream.tokens.TokenSealer`)."""

    def seal(self, username: str, credential: PrimaryCredential) -> SealedToken: ...


class PostService:
    def __init__(
        self,
        store: PostStore,
        spool: Spool,
        users: UserStore,
        settings: Settings,
        id_factory: ids.UlidFactory,
        sealer: Callable[[], Sealer | None] = lambda: None,
    ) -> None:
        """`sealer` gives what seals an author's primary token for the
        replay, or None when the primary does not need it (only a Mastodon
        primary replays as each author)."""
        self._sealer = sealer
        self._store = store
        self._spool = spool
        self._users = users
        self._settings = settings
        self._ids = id_factory
        self._post_limit = posts_limit(settings.posts_per_minute)
        self._write_limit = writes_limit(settings.writes_per_minute)

    # -- writes -------------------------------------------------------------

    def create(
        self, author: str, body: object, idempotency_key: str | None, primary: PrimaryCredential | None = None
    ) -> Created:
        """Validate and store a post durably; see docs/DESIGN.md, write path.

        Returns once the post is in DynamoDB (or, if DynamoDB refuses, in
        the S3 spool). Raises ValidationFailed, Conflict, or Unavailable
        when neither store takes it. A post made with the primary's own
        token (`primary`) keeps that token for its replay.
        """
        new = parse_new_post(body, idempotency_key, self._settings.max_post_chars)
        return self.create_validated(author, new, primary)

    def create_validated(self, author: str, new: NewPost, primary: PrimaryCredential | None = None) -> Created:
        """`create` for a request another API has already validated into a
        NewPost (the Mastodon API): the same rules from here on."""
        post_id = self._ids.new()
        post = Post(
            id=post_id,
            author=author,
            text=new.text,
            created_at=ids.iso_from_millis(ids.ulid_millis(post_id)),
            in_reply_to=new.in_reply_to,
            idempotency_key=new.idempotency_key,
            spoiler_text=new.spoiler_text,
            language=new.language,
        )
        try:
            self._require_parent(new)
            charge, window = self._post_charge(post), self._idempotency_window()
            store = self._store
            self._keeping_token(
                author, primary, lambda keeping: store.create_post(post, new.fingerprint, *window, charge, keeping)
            )
        except PostExists as exists:
            post = _our_committed_post(exists, post)
        except DuplicateIdempotencyKey as duplicate:
            return self._keyed_again(duplicate, new, post, primary)
        except StoreUnavailable:
            return self._spool_instead(post, new, primary)
        count("PostsAccepted")
        return Created(post)

    def _keyed_again(
        self, duplicate: DuplicateIdempotencyKey, new: NewPost, post: Post, primary: PrimaryCredential | None
    ) -> Created:
        """A request whose Idempotency-Key another request holds: that
        request's post. If that post was never written (its request ended
        between its two writes, or is still between them), it is written
        now under the id the key holds, so every request with the key gets
        one and the same post (docs/DESIGN.md, "Idempotency")."""
        earlier = self._earlier_post(duplicate, new)
        if earlier is not None:
            return Created(earlier, repeated=True)
        held = post.with_changes(
            id=duplicate.post_id, created_at=ids.iso_from_millis(ids.ulid_millis(duplicate.post_id))
        )
        charge = self._post_charge(held)
        try:
            self._keeping_token(held.author, primary, lambda keeping: self._store.complete_post(held, charge, keeping))
        except PostExists as exists:
            return Created(_our_committed_post(exists, held), repeated=True)
        except RateLimited:
            # A racing request may have written it meanwhile: then it is the answer.
            written = self._store.get_post(held.id)
            if written is None:
                raise
            return Created(written, repeated=True)
        except StateChanged:
            # The key was released (its request was refused) or expired and
            # taken: this request is a new one after all.
            return self.create_validated(post.author, new, primary)
        except StoreUnavailable:
            return self._spool_instead(held, new, primary)
        count("PostsAccepted")
        return Created(held, repeated=True)

    def _post_charge(self, post: Post) -> Charge | None:
        """The post's count in its author's window: the minute of its id,
        which is the minute the stream counts it in."""
        return self._post_limit.charge_at(post.author, ids.ulid_millis(post.id) / 1000)

    def _require_parent(self, new: NewPost) -> None:
        if new.in_reply_to is None:
            return
        parent = self._store.get_post(new.in_reply_to)
        if parent is None or parent.is_deleted:
            count("PostsRejected")
            raise ValidationFailed(f"in_reply_to: no post {new.in_reply_to}", code="unknown_parent")

    def _idempotency_window(self) -> tuple[int, int]:
        now = int(time.time())
        return now + self._settings.idempotency_ttl_seconds, now

    def _earlier_post(self, duplicate: DuplicateIdempotencyKey, new: NewPost) -> Post | None:
        """The post the key's record names; None if it was never written."""
        if duplicate.fingerprint != new.fingerprint:
            count("PostsRejected")
            raise ValidationFailed(
                "this Idempotency-Key was already used for a different post", code="idempotency_key_reused"
            )
        earlier = self._store.get_post(duplicate.post_id)
        if earlier is not None and earlier.is_deleted:
            raise Conflict("the post made with this Idempotency-Key was deleted", code="idempotency_key_used")
        return earlier

    def _keeping_token(
        self, author: str, primary: PrimaryCredential | None, write: Callable[[Keeping | None], None]
    ) -> None:
        """`write` with the author's primary token kept for the replay: first
        only checked (the stored one is this one: a condition, no extra
        write); if it is not, sealed (KMS) and written with it. A token
        that cannot be sealed now is not kept: the replay falls back to the
        admin-registered one."""
        if primary is None or self._sealer() is None:
            write(None)
            return
        try:
            write(Keeping(primary.sha256))
        except KeptTokenDiffers:
            sealed = self._seal(author, primary)
            write(Keeping(primary.sha256, sealed) if sealed else None)

    def _seal(self, author: str, primary: PrimaryCredential | None) -> SealedToken | None:
        sealer = self._sealer() if primary is not None else None
        if sealer is None:
            return None
        try:
            return sealer.seal(author, primary)
        except StoreUnavailable as exc:
            count("PrimaryTokensNotKept")
            logger.warning("the primary token could not be sealed; not kept", extra={"reason": str(exc)})
            return None

    def _spool_instead(self, post: Post, new: NewPost, primary: PrimaryCredential | None) -> Created:
        # A DynamoDB write may time out after it committed; the spooled copy
        # has the same id, so folding it in later is a no-op, not a twin.
        try:
            spooled = self._spool.put(post, new.fingerprint, self._seal(post.author, primary))
        except StoreUnavailable as exc:
            count("PostsRefused")
            logger.error("neither DynamoDB nor S3 accepted a post", extra={"reason": str(exc)})
            raise Unavailable(
                "storage is unavailable; nothing was stored, retry later", retry_after=SPOOL_RETRY_AFTER_SECONDS
            ) from exc
        count("PostsSpooled")
        logger.warning("DynamoDB refused a post; spooled to S3", extra={"post_id": spooled.id})
        return Created(spooled, spooled=True, repeated=spooled.id != post.id)

    def delete(self, author: str, post_id: str, primary: PrimaryCredential | None = None) -> None:
        """Delete the author's own post: it leaves every timeline and the
        backlog, and is never reinserted upstream; a post already replayed
        is queued for deletion on the primary too (made with the primary's
        own token, `primary`, it keeps it for that). Raises RateLimited past
        the author's WRITES_PER_MINUTE."""
        deleted_at = utc_now_iso()
        for _ in range(_DELETE_ATTEMPTS):
            if self._try_delete(author, post_id, deleted_at, primary):
                count("PostsDeleted")
                return
        raise Conflict("the post is changing right now; try again", code="post_busy")

    def _try_delete(self, author: str, post_id: str, deleted_at: str, primary: PrimaryCredential | None) -> bool:
        """One read, decide and write; False if the post changed meanwhile
        (replayed or deleted), so the caller reads and decides again."""
        post = self._store.get_post(post_id) if ids.is_ulid(post_id) else None
        if post is not None and post.is_deleted and post.deleted_at == deleted_at:
            return True  # our own delete had committed: botocore retried it after its answer was lost
        post = _live(post, post_id)
        if post.author != author:
            raise Forbidden("only the author may delete a post", code="not_author")
        if post.state == SENDING:
            raise Conflict("the post is being reinserted upstream right now; retry shortly", code="post_busy")
        charge = self._write_limit.charge(author)
        try:
            if post.state == REPLAYED:
                queue = self._store.queue_upstream_delete
                self._keeping_token(author, primary, lambda keeping: queue(post, deleted_at, charge, keeping))
            else:
                self._store.mark_deleted(post, deleted_at, charge)
        except StateChanged:
            return False
        return True

    # -- reads --------------------------------------------------------------

    def get(self, post_id: str) -> Post:
        return _live(self._store.get_shown_post(post_id) if ids.is_ulid(post_id) else None, post_id)

    def get_any_state(self, post_id: str) -> Post:
        """The post whatever its state, deleted included: for operators."""
        post = self._store.get_post(post_id) if ids.is_ulid(post_id) else None
        if post is None:
            raise NotFound(f"no post {post_id}", code="post_not_found")
        return post

    def author_timeline(self, username: str, cursor: str | None, limit: str | None) -> dict:
        before, size = self._page_request(cursor, limit)
        user = self._users.get(username) if is_username(username) else None
        if user is None:
            raise NotFound(f"no user {username}", code="user_not_found")
        if user.suspended:
            raise NotFound(f"account {username} is suspended", code="account_suspended")
        return _page_body(self._store.author_posts(username, before, size))

    def public_timeline(self, cursor: str | None, limit: str | None) -> dict:
        return _page_body(self._store.public_posts(*self._page_request(cursor, limit)))

    def _page_request(self, cursor: str | None, limit: str | None) -> tuple[str | None, int]:
        size = parse_limit(limit, self._settings.default_page_size, self._settings.max_page_size)
        return decode_cursor(cursor), size

    # -- reads by id range (the Mastodon API's windows) ----------------------

    def public_window(self, lowest: str, highest: str, limit: int, oldest_first: bool = False) -> Page:
        """Live public posts with lowest <= id <= highest; see PostStore.public_window."""
        return self._store.public_window(lowest, highest, limit, oldest_first)

    def post_by_mastodon_id(self, lowest: str, highest: str) -> Post | None:
        """The post of a Mastodon id's ULID range; see PostStore.post_by_mastodon_id."""
        return self._store.post_by_mastodon_id(lowest, highest)

    def authors_window(
        self, authors: list[str], lowest: str, highest: str, limit: int, oldest_first: bool = False
    ) -> Page:
        """The same window over the posts of `authors` only, merged."""
        partitions = [self._store.author_partition(author) for author in authors]
        return self._store.posts_in_window(partitions, lowest, highest, limit, oldest_first)

    def posts_by_id(self, post_ids: list[str]) -> dict[str, Post]:
        """Several posts by id, in any state (eventually consistent); ids not
        stored are absent."""
        return self._store.get_posts(post_ids)


def _live(post: Post | None, post_id: str) -> Post:
    if post is None or post.is_deleted:
        raise NotFound(f"no post {post_id}", code="post_not_found")
    return post


def _our_committed_post(exists: PostExists, post: Post) -> Post:
    """The stored post, if it is `post` as we sent it: a retry of our own
    transaction found its commit (botocore retries when an answer is lost,
    and moto, unlike DynamoDB, ignores the ClientRequestToken). The whole
    transaction was written, idempotency record included, so it is a
    success. Any other post under our new id is a bug, re-raised."""
    stored = exists.stored
    if stored is None or _submission(stored) != _submission(post):
        raise exists
    return stored


def _submission(post: Post) -> tuple:
    """What the author sent, and what we made of it: not what happened later."""
    return (post.id, post.author, post.text, post.in_reply_to, post.idempotency_key, post.spoiler_text, post.language)


def _page_body(page: Page) -> dict:
    return {
        "posts": [post.to_public() for post in page.posts],
        "next_cursor": encode_cursor(page.posts[-1].id) if page.has_more else None,
    }
