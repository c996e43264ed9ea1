"""The DynamoDB store of posts: the write path (create, delete) and the
timelines. The replay's transitions of the same items are
`recovery.backlog`'s; the key layout both follow is `posts.items`.

Every access pattern here is listed in docs/DESIGN.md with the key that
serves it. No request path scans the table.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chalicelib.accounts import kept_tokens
from chalicelib.accounts.kept_tokens import Keeping, KeptTokenDiffers
from chalicelib.accounts.rate_limits import Charge, PostWindows, read_counted_posts, transact_charged
from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.aws.schema import BY_AUTHOR_INDEX, PUBLIC_INDEX
from chalicelib.core import ids
from chalicelib.core.models import DELETE_PENDING, DELETED, REPLAYED, Post
from chalicelib.errors import DuplicateIdempotencyKey, PostExists, RateLimited, StateChanged, StoreUnavailable
from chalicelib.posts import items as layout
from chalicelib.posts.items import BEFORE_ALL_IDS
from chalicelib.posts.public_pages import Chunk, Ref, Window
from chalicelib.posts.public_store import PublicPages

# Parallel queries for a window over many partitions (a home timeline of
# someone following hundreds of accounts).
_WINDOW_WORKERS = 32
# Reads of one page at most, when a suspended account's posts were left out
# of it: a page shorter than asked is answered after these (it still says
# whether more follow), rather than reading on without end.
_FILL_ROUNDS = 3
# Posts read beyond a public page, for those deleted since their chunk.
_DELETED_SLACK = 4


@dataclass(frozen=True)
class Page:
    posts: list[Post]
    has_more: bool


class PostStore:
    """DynamoDB adapter for posts. Takes its client so tests can swap it."""

    def __init__(
        self,
        client,
        table_name: str,
        shards: int,
        clock=time.time,
        *,
        reads_mirror: bool = False,
        public_lanes: int = 1,
        post_windows: PostWindows | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards
        self._clock = clock
        self._public = PublicPages(client, table_name, public_lanes)
        # Mirrored posts have their own partitions; a stack that does not
        # mirror (MIRROR_ENABLED off) reads none of them, so its public pages
        # and reads by id cost what they did before the mirror existed. Only
        # a mirrored account can be suspended: such a stack reads no author
        # either.
        self._reads_mirror = reads_mirror
        # The posts this container accepted in each author's rate window
        # (one per container: the wiring shares it between stores).
        self._post_windows = post_windows or PostWindows()

    # -- write path -------------------------------------------------------

    def create_post(
        self,
        post: Post,
        fingerprint: str,
        idempotency_expires_at: int,
        now: int,
        charge: Charge | None = None,
        keeping: Keeping | None = None,
    ) -> None:
        """Store a new post: one conditional PutItem of the post item, after
        its idempotency record (only with a key), the author's kept primary
        token (only with `keeping`) and its rate-limit check (`charge`, if
        any: a read of the stream's count, no write). Everything derived
        from it (the backlog count, feed markers, home timelines, the rate
        window's count) follows on the table's stream (`chalicelib.stream`).

        Raises DuplicateIdempotencyKey if the author's key is held by
        another request (its record names another post id: that request's
        post, or one it has yet to write, see `complete_post`); checked
        first, so a retry gets its post back even at the rate limit.
        Then KeptTokenDiffers if `keeping` checks a token that is not the
        one kept, RateLimited if the author's window is full (the key's
        record is released again), PostExists, with the stored post, if a
        post with this id is stored (a retry of our own write that had
        committed finds it: botocore retries when an answer is lost), and
        StoreUnavailable if DynamoDB cannot take a write now.
        """
        if post.idempotency_key:
            self._reserve_key(post, fingerprint, idempotency_expires_at, now)
        self._keep_token(post.author, keeping)
        try:
            self._admit(post, charge)
        except RateLimited:
            if post.idempotency_key:
                self._release_key(post)
            raise
        self._put_post(post)

    def complete_post(self, post: Post, charge: Charge | None = None, keeping: Keeping | None = None) -> None:
        """Write the post an idempotency record holds the id of, which its
        own request never wrote (it ended between the two writes, or it is
        still on its way and this is a racing retry). Conditional on the
        record still naming this id, in one transaction with the post, so a
        key's record and its post always agree: StateChanged if the record
        moved (it was released, or expired and taken), PostExists if the
        post is stored, and the rest as `create_post`."""
        self._keep_token(post.author, keeping)
        self._admit(post, charge)
        record_check = {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": dynamo.key(layout.idempotency_pk(post.author, post.idempotency_key), "IDEM"),
                "ConditionExpression": "post_id = :id",
                "ExpressionAttributeValues": {":id": {"S": post.id}},
            }
        }
        try:
            dynamo.transact(self._client, [{"Put": self._new_post_put(post)}, record_check], "complete post")
        except dynamo.TransactionCancelled as cancelled:
            if cancelled.failed(0):
                raise PostExists(post.id, self._stored(post.id, cancelled.old_items[0])) from cancelled
            raise StateChanged(post.id) from cancelled

    def _admit(self, post: Post, charge: Charge | None) -> None:
        """RateLimited if the author's window is full: the posts the stream
        counted there (one eventually consistent GetItem) and those this
        container accepted (docs/DESIGN.md, "Write path")."""
        self._post_windows.admit(charge, post.id, lambda full: read_counted_posts(self._client, self._table, full))

    def _put_post(self, post: Post) -> None:
        try:
            with unavailable_as_domain_error("create post"):
                self._client.put_item(**self._new_post_put(post))
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            old = exc.response.get("Item")
            raise PostExists(post.id, self._stored(post.id, old and dynamo.from_item(old))) from exc

    def _stored(self, post_id: str, values: dict | None) -> Post | None:
        return layout.post_from_values(values) if values else self.get_post(post_id)

    def _new_post_put(self, post: Post) -> dict:
        return {
            "TableName": self._table,
            "Item": dynamo.to_item(layout.new_post_item(post, self._shards)),
            "ConditionExpression": "attribute_not_exists(PK)",
            # The stored post, to tell our own committed write from another.
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _reserve_key(self, post: Post, fingerprint: str, expires_at: int, now: int) -> None:
        """The idempotency record, holding the post's id before the post is
        written. A record already naming this very id is ours (a retried
        write, or the spooled copy of this post folded in)."""
        record = {
            "PK": layout.idempotency_pk(post.author, post.idempotency_key),
            "SK": "IDEM",
            "post_id": post.id,
            "fingerprint": fingerprint,
            "expires_at": expires_at,
        }
        try:
            with unavailable_as_domain_error("reserve idempotency key"):
                self._client.put_item(
                    TableName=self._table,
                    Item=dynamo.to_item(record),
                    # TTL deletes lazily (up to days late), so an expired record
                    # may still be there: it must not block a new post.
                    ConditionExpression="attribute_not_exists(PK) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            held = dynamo.from_item(exc.response.get("Item", {}))
            if held.get("post_id") != post.id:
                raise DuplicateIdempotencyKey(held.get("post_id", ""), held.get("fingerprint", "")) from exc

    def _release_key(self, post: Post) -> None:
        """Drop the record of a post refused by the rate limit, unless a
        racing retry has written the post meanwhile (then the record stays
        with it). Best effort: a record left behind makes the next retry
        with the key write the post (`complete_post`), counted then."""
        key = dynamo.key(layout.idempotency_pk(post.author, post.idempotency_key), "IDEM")
        items = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": key,
                    "ConditionExpression": "post_id = :id",
                    "ExpressionAttributeValues": {":id": {"S": post.id}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": layout.post_key(post.id),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        try:
            dynamo.transact(self._client, items, "release idempotency key")
        except (dynamo.TransactionCancelled, StoreUnavailable):
            return

    def _keep_token(self, author: str, keeping: Keeping | None) -> None:
        """Check the author's kept primary token (one read of its digest), or
        keep a newly sealed one with its marker (`accounts.kept_tokens`)."""
        if keeping is None:
            return
        if keeping.sealed is None:
            if kept_tokens.read_kept_digest(self._client, self._table, author) != keeping.sha256:
                raise KeptTokenDiffers
            return
        items = [
            kept_tokens.keep_update(self._table, author, keeping.sealed),
            kept_tokens.marker_put(self._table, self._shards, author, keeping.sealed),
        ]
        dynamo.transact(self._client, items, "keep primary token")

    def fold_spooled(
        self,
        post: Post,
        fingerprint: str,
        idempotency_expires_at: int,
        now: int,
        kept_token: kept_tokens.SealedToken | None = None,
    ) -> None:
        """Store a post that was accepted into the S3 spool (it got 202).

        Raises PostExists if its id is stored (an earlier fold, or its own
        write that committed after all), and DuplicateIdempotencyKey if its
        key now belongs to a post made from the same request (the client's
        retry after the outage reached DynamoDB: that copy is the post).
        A key since reused for a *different* post must not drop this one:
        it is stored without the key, which stays with the newer post, and
        is replayed under its own id as the key instead. The primary token
        the post was made with (`kept_token`, sealed in the spool) is kept
        with it.
        """
        keeping = Keeping(kept_token.sha256, kept_token) if kept_token else None
        try:
            self.create_post(post, fingerprint, idempotency_expires_at, now, keeping=keeping)
        except DuplicateIdempotencyKey as taken:
            if taken.fingerprint == fingerprint:
                raise
            unkeyed = post.with_changes(idempotency_key=None)
            self.create_post(unkeyed, fingerprint, idempotency_expires_at, now, keeping=keeping)

    def mark_deleted(self, post: Post, deleted_at: str, charge: Charge | None = None) -> None:
        """Take the post out of every timeline and the backlog, counting the
        delete against its author's write limit (`charge`, if any).

        Conditional on the state we read, so a delete racing the replay job
        either wins (never sent) or loses (StateChanged, and the caller
        re-reads). The counts and feed markers follow on the stream.
        Raises RateLimited if the author's window is full.
        """
        update = {
            "Update": {
                "TableName": self._table,
                "Key": layout.post_key(post.id),
                "UpdateExpression": "SET #state = :deleted, deleted_at = :at REMOVE "
                + ", ".join(layout.INDEX_ATTRIBUTES),
                "ConditionExpression": "#state = :expected",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":deleted": {"S": DELETED},
                    ":at": {"S": deleted_at},
                    ":expected": {"S": post.state},
                },
            }
        }
        try:
            transact_charged(self._client, self._table, [update], "delete post", charge, idempotent_as=post.id)
        except dynamo.TransactionCancelled as cancelled:
            raise StateChanged(post.id) from cancelled

    def queue_upstream_delete(
        self, post: Post, deleted_at: str, charge: Charge | None = None, keeping: Keeping | None = None
    ) -> None:
        """replayed -> delete_pending: the post is deleted here as
        `mark_deleted` deletes it (out of every timeline; the stream moves
        the feed markers and the count), and its copy on the primary joins
        the upstream deletes.

        Conditional on the post still being replayed, so a concurrent
        delete of it makes one queued delete: the other gets StateChanged.
        Counts against the author's write limit like `mark_deleted`, and
        checks or keeps the author's primary token (`keeping`) as
        `create_post` does: the replay deletes the copy as the author.
        """
        shard = layout.shard_of(post.id, self._shards)
        update = {
            "Update": {
                "TableName": self._table,
                "Key": layout.post_key(post.id),
                "UpdateExpression": "SET #state = :queued, deleted_at = :at, BacklogPK = :deletes, BacklogSK = :id "
                "REMOVE " + ", ".join(layout.TIMELINE_ATTRIBUTES),
                "ConditionExpression": "#state = :replayed",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":queued": {"S": DELETE_PENDING},
                    ":at": {"S": deleted_at},
                    ":deletes": {"S": layout.upstream_deletes_partition(shard)},
                    ":id": {"S": post.id},
                    ":replayed": {"S": REPLAYED},
                },
            }
        }
        self._keep_token(post.author, keeping)
        try:
            transact_charged(
                self._client, self._table, [update], "queue upstream delete", charge, idempotent_as=post.id
            )
        except dynamo.TransactionCancelled as cancelled:
            raise StateChanged(post.id) from cancelled

    # -- reads ------------------------------------------------------------

    def get_post(self, post_id: str) -> Post | None:
        """A post written here, or else a mirrored post of the primary."""
        return layout.read_post(self._client, self._table, post_id, self._shards if self._reads_mirror else None)

    def get_shown_post(self, post_id: str) -> Post | None:
        """`get_post` for a reader: None too if its author is suspended (one
        more read, with the mirror). The write path and the replay read with
        `get_post`: a suspension hides posts, it does not change them."""
        post = self.get_post(post_id)
        return post if post is None or self._shown([post]) else None

    def author_posts(self, author: str, before_id: str | None, limit: int) -> Page:
        """One author's page; the caller has read the author (a suspended
        one has no page to ask for)."""
        posts = self._query(BY_AUTHOR_INDEX, layout.author_partition(author), before_id=before_id, limit=limit + 1)
        return Page(posts[:limit], len(posts) > limit)

    def public_posts(self, before_id: str | None, limit: int) -> Page:
        """Newest first, from the public timeline's chunks (`public_pages`)."""
        highest = ids.MAX_ULID if before_id is None else ids.ulid_from_value(ids.ulid_value(before_id) - 1)
        return self.public_window(ids.MIN_ULID, highest, limit)

    def public_window(self, lowest: str, highest: str, limit: int, oldest_first: bool = False) -> Page:
        """Live posts with lowest <= id <= highest, newest first (with
        `oldest_first`, the `limit` oldest): one Query per public lane and
        one consistent BatchGetItem of the posts a page shows (a few more,
        so that deleted ones seldom make it short), plus, with the mirror,
        one BatchGetItem of their authors. Whatever WRITE_SHARDS is."""
        window = Window(lowest, highest, oldest_first)
        shown: list[Post] = []
        for _ in range(_FILL_ROUNDS):
            refs, unsettled = self._public.refs(window, limit + 1 + _DELETED_SLACK)
            asked = refs[: limit + 1 + _DELETED_SLACK]
            shown += self._shown(self._live_posts(asked))
            more = unsettled or len(refs) > len(asked)
            if len(shown) > limit or not more or not asked:
                break
            window = window.after(asked[-1].post_id)
        page = shown[:limit]
        return Page(sorted(page, key=lambda post: post.id, reverse=True), len(shown) > limit or more)

    def _live_posts(self, refs: list[Ref]) -> list[Post]:
        """The posts `refs` name that are live, in their order: a deleted
        post stays in its chunk, a mirrored one may have expired."""
        keys = [
            layout.mirrored_post_key(ref.post_id, self._shards) if ref.mirrored else layout.post_key(ref.post_id)
            for ref in refs
        ]
        items = dynamo.batch_get(self._client, self._table, keys, "read public posts", consistent=True)
        posts = {post.id: post for post in map(layout.post_from_item, items)}
        return [posts[ref.post_id] for ref in refs if ref.post_id in posts and not posts[ref.post_id].is_deleted]

    def add_public(self, chunks: list[Chunk]) -> None:
        """The stream consumer's part: posts that appeared, by chunk."""
        self._public.add(chunks)

    def post_by_mastodon_id(self, lowest: str, highest: str) -> Post | None:
        """The oldest live post with lowest <= id <= highest, a Mastodon
        id's range (`mastodon.ids`): the range lies in one write shard (the
        shard is a hash of the id's top 64 bits, `items.shard_of`), so one
        query of its Public partition and, with the mirror, one of its
        mirrored posts. Suspended authors are the caller's to check."""
        shard = layout.shard_of(lowest, self._shards)
        partitions = [(PUBLIC_INDEX, layout.public_partition(shard))]
        if self._reads_mirror:
            partitions.append((layout.BASE_TABLE, layout.mirror_partition(shard)))
        found = [
            post
            for index, partition in partitions
            for post in self._query_window(index, partition, lowest, highest, 1, oldest_first=True)
        ]
        return min(found, key=lambda post: post.id, default=None)

    @staticmethod
    def author_partition(author: str) -> tuple[str, str]:
        return (BY_AUTHOR_INDEX, layout.author_partition(author))

    def posts_in_window(
        self, partitions: list[tuple[str, str]], lowest: str, highest: str, limit: int, oldest_first: bool = False
    ) -> Page:
        """Live posts with lowest <= id <= highest from every partition,
        merged: the `limit` newest (or, with `oldest_first`, the `limit`
        oldest), always returned newest first. One query per partition, run
        in parallel; `has_more` says whether the window held more posts."""

        def read(edge: tuple[str, str]) -> list[Post]:
            low, high = edge

            def one(partition: tuple[str, str]) -> list[Post]:
                index, key = partition
                return self._query_window(index, key, low, high, limit + 1, oldest_first)

            if len(partitions) == 1:
                merged = one(partitions[0])
            else:
                with ThreadPoolExecutor(max_workers=min(len(partitions), _WINDOW_WORKERS)) as pool:
                    merged = [post for posts in pool.map(one, partitions) for post in posts]
            merged.sort(key=lambda post: post.id, reverse=not oldest_first)
            return merged[: limit + 1]

        def after(last_id: str) -> tuple[str, str]:
            # The window's far end moves to the last post read (inclusive:
            # BETWEEN; `_filled` drops the one post read twice).
            return (last_id, highest) if oldest_first else (lowest, last_id)

        page = self._filled(read, (lowest, highest), limit, after)
        return Page(sorted(page.posts, key=lambda post: post.id, reverse=True), page.has_more)

    def _filled(self, read, start, limit: int, after) -> Page:
        """A page of `limit` shown posts in reading order. `read(edge)`
        gives up to limit + 1 posts from `edge`; while a suspended author's
        posts were left out of a full read, the next read starts `after` its
        last post (at most `_FILL_ROUNDS` reads: a page may then be short,
        and says that more follow)."""
        shown: list[Post] = []
        seen: set[str] = set()
        edge = start
        for _ in range(_FILL_ROUNDS):
            posts = read(edge)
            full = len(posts) > limit
            shown += self._shown([post for post in posts if post.id not in seen])
            seen.update(post.id for post in posts)
            if len(shown) > limit or not full:
                break
            edge = after(posts[-1].id)
        return Page(shown[:limit], len(shown) > limit or full)

    def _shown(self, posts: list[Post]) -> list[Post]:
        """The posts whose authors are not suspended: one BatchGetItem of
        their user items (eventually consistent), and none without the mirror."""
        if not self._reads_mirror or not posts:
            return posts
        authors = dict.fromkeys(post.author for post in posts)
        keys = [dynamo.key(f"USER#{author}", "PROFILE") for author in authors]
        users = dynamo.batch_get(self._client, self._table, keys, "read authors")
        suspended = {user["username"]["S"] for user in users if user.get("suspended", {}).get("BOOL")}
        return [post for post in posts if post.author not in suspended] if suspended else posts

    def _query_window(
        self, index: str, partition: str, lowest: str, highest: str, limit: int, oldest_first: bool
    ) -> list[Post]:
        hash_key, range_key = layout.key_names(index)
        with unavailable_as_domain_error(f"query {index or 'table'}"):
            response = self._client.query(
                TableName=self._table,
                **layout.index_argument(index),
                KeyConditionExpression="#pk = :pk AND #sk BETWEEN :low AND :high",
                ExpressionAttributeNames={"#pk": hash_key, "#sk": range_key},
                ExpressionAttributeValues={":pk": {"S": partition}, ":low": {"S": lowest}, ":high": {"S": highest}},
                ScanIndexForward=oldest_first,
                Limit=limit,
            )
        return [layout.post_from_item(item) for item in response["Items"]]

    def get_posts(self, post_ids: list[str]) -> dict[str, Post]:
        """Several posts by id (eventually consistent): one BatchGetItem per
        100 ids; ids that are not stored are absent from the answer."""
        # Each id's own key and its mirrored key: one of them is stored.
        unique = dict.fromkeys(post_ids)
        keys = [layout.post_key(post_id) for post_id in unique]
        if self._reads_mirror:
            keys += [layout.mirrored_post_key(post_id, self._shards) for post_id in unique]
        posts = map(layout.post_from_item, dynamo.batch_get(self._client, self._table, keys, "get posts"))
        return {post.id: post for post in posts}

    def posts_between(self, shard: int, after_id: str, before_id: str, limit: int) -> list[Post]:
        """Live posts of one public shard with after_id < id < before_id,
        oldest first: what the archiver has not archived yet."""
        return self._between(PUBLIC_INDEX, layout.public_partition(shard), after_id, before_id, limit)

    def mirrored_posts_between(self, shard: int, after_id: str, before_id: str, limit: int) -> list[Post]:
        """The same over a shard's mirrored posts (the feed publisher's
        candidates); none unless the store reads the mirror."""
        if not self._reads_mirror:
            return []
        return self._between(layout.BASE_TABLE, layout.mirror_partition(shard), after_id, before_id, limit)

    def _between(self, index: str, partition: str, after_id: str, before_id: str, limit: int) -> list[Post]:
        posts = self._query(index, partition, after_id=after_id or BEFORE_ALL_IDS, before_id=before_id, limit=limit)
        return [post for post in posts if after_id < post.id < before_id]

    def _query(
        self, index: str, partition: str, *, limit: int, before_id: str | None = None, after_id: str | None = None
    ) -> list[Post]:
        return layout.query_posts(
            self._client, self._table, index, partition, limit=limit, before_id=before_id, after_id=after_id
        )
