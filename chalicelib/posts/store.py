"""The DynamoDB store of posts: the write path, timelines and the backlog.

Every access pattern here is listed in docs/DESIGN.md with the key that
serves it. No request path scans the table.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chalicelib.accounts.rate_limits import Charge, transact_charged
from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.aws.schema import BACKLOG_INDEX, BY_AUTHOR_INDEX, PUBLIC_INDEX, index_keys
from chalicelib.core.clock import iso_at
from chalicelib.core.models import (
    DELETE_FAILED,
    DELETE_PENDING,
    DELETED,
    DELETING,
    FAILED,
    PENDING,
    REPLAYED,
    SENDING,
    Post,
)
from chalicelib.errors import DuplicateIdempotencyKey, PostExists
from chalicelib.feeds import markers as feed_store

POST_SK = "POST"
# Dead letters keep their Backlog index keys under this one partition: they
# are rare, and listing them is an admin read.
DEAD_LETTER_PARTITION = "DEADLETTER"
DEAD_LETTER_COUNTER = "COUNTER#deadletters"
# Replayed posts deleted here, whose copy on the primary is still to be
# deleted, keep their Backlog index keys under these partitions (one per
# write shard), apart from the posts to send: the posts' window must stay a
# prefix by id, and their oldest-pending age must not count a delete of an
# old post queued just now.
UPSTREAM_DELETES_PARTITION = "DELETES"
# The counter attribute, on the backlog counter shards, of those deletes.
UPSTREAM_DELETES_COUNT = "deletes"
BACKLOG_COUNT = "pending"
# Above every ULID in string order: "no cursor" means "before the end of time".
_AFTER_ALL_IDS = "~"
# Below every ULID in string order (DynamoDB refuses empty key values).
_BEFORE_ALL_IDS = "0"
_INDEX_ATTRIBUTES = [name for index in (BY_AUTHOR_INDEX, PUBLIC_INDEX, BACKLOG_INDEX) for name in index_keys(index)]
_KEY_ATTRIBUTES = {"PK", "SK", *_INDEX_ATTRIBUTES}
# Parallel queries for a window over many partitions (a home timeline of
# someone following hundreds of accounts).
_WINDOW_WORKERS = 32


class StateChanged(Exception):
    """The post's state moved under us (a concurrent delete or replay)."""


@dataclass(frozen=True)
class BacklogCounts:
    # Posts waiting to be sent, and copies on the primary waiting to be deleted.
    posts: int
    upstream_deletes: int


@dataclass(frozen=True)
class Page:
    posts: list[Post]
    has_more: bool


def shard_of(post_id: str, shards: int) -> int:
    """Stable shard for a post: derived from its id, so any later update
    (delete, replay) finds the same index partitions without a lookup."""
    return int(hashlib.sha256(post_id.encode()).hexdigest()[:8], 16) % shards


def idempotency_pk(author: str, key: str) -> str:
    # Keys are hashed: they are client-chosen and may be up to 255 bytes.
    return f"IDEM#{author}#{hashlib.sha256(key.encode()).hexdigest()}"


class PostStore:
    """DynamoDB adapter for posts. Takes its client so tests can swap it."""

    def __init__(self, client, table_name: str, shards: int, clock=time.time) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards
        self._clock = clock

    # -- write path -------------------------------------------------------

    def create_post(
        self, post: Post, fingerprint: str, idempotency_expires_at: int, now: int, charge: Charge | None = None
    ) -> None:
        """Store a new post, its backlog count, its idempotency record and
        its author's rate-limit count (`charge`, if any) in one transaction,
        so a retried request can never make a second post and a refused one
        counts for nothing.

        Raises PostExists, with the stored post, if a post with this id is
        stored: checked first, because a retry of this very transaction
        that had committed (botocore retries when an answer is lost) finds
        its own post, and every other item of it written. Then
        DuplicateIdempotencyKey if the author's key is already live (before
        the rate limit: a retry gets its post back), RateLimited if the
        author's window is full, StoreUnavailable if DynamoDB cannot take
        the write now.
        """
        changed_at = self._now_iso()
        items = {
            "post": self._put_new_post(post),
            "backlog": self._count_backlog(post.id, +1, feed_changed_at=changed_at),
            "feed_marker": feed_store.user_marker_update(self._table, post.author, changed_at, new_post_id=post.id),
        }
        if post.idempotency_key:
            items["idempotency"] = self._put_idempotency(post, fingerprint, idempotency_expires_at, now)
        try:
            transact_charged(
                self._client, self._table, list(items.values()), "create post", charge, idempotent_as=post.id
            )
        except dynamo.TransactionCancelled as cancelled:
            old = dict(zip(items, cancelled.old_items, strict=False))
            failed = {name for index, name in enumerate(items) if cancelled.failed(index)}
            if "post" in failed:
                stored = _post_from_values(old["post"]) if old.get("post") else self.get_post(post.id)
                raise PostExists(post.id, stored) from cancelled
            if "idempotency" in failed:
                record = old.get("idempotency") or {}
                raise DuplicateIdempotencyKey(record.get("post_id", ""), record.get("fingerprint", "")) from cancelled
            raise

    def fold_spooled(self, post: Post, fingerprint: str, idempotency_expires_at: int, now: int) -> None:
        """Store a post that was accepted into the S3 spool (it got 202).

        Raises PostExists if its id is stored (an earlier fold, or its own
        write that committed after all), and DuplicateIdempotencyKey if its
        key now belongs to a post made from the same request (the client's
        retry after the outage reached DynamoDB: that copy is the post).
        A key since reused for a *different* post must not drop this one:
        it is stored without the key, which stays with the newer post, and
        is replayed under its own id as the key instead.
        """
        try:
            self.create_post(post, fingerprint, idempotency_expires_at, now)
        except DuplicateIdempotencyKey as taken:
            if taken.fingerprint == fingerprint:
                raise
            self.create_post(post.with_changes(idempotency_key=None), fingerprint, idempotency_expires_at, now)

    def _put_new_post(self, post: Post) -> dict:
        shard = shard_of(post.id, self._shards)
        item = {
            **post.to_record(),
            "PK": f"POST#{post.id}",
            "SK": POST_SK,
            "AuthorPK": f"USER#{post.author}",
            "AuthorSK": post.id,
            "PublicPK": f"PUBLIC#{shard}",
            "PublicSK": post.id,
            "BacklogPK": f"BACKLOG#{shard}",
            "BacklogSK": post.id,
        }
        return {
            "Put": {
                "TableName": self._table,
                "Item": dynamo.to_item(item),
                "ConditionExpression": "attribute_not_exists(PK)",
                # The stored post, to tell our own committed write from another.
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _put_idempotency(self, post: Post, fingerprint: str, expires_at: int, now: int) -> dict:
        record = {
            "PK": idempotency_pk(post.author, post.idempotency_key),
            "SK": "IDEM",
            "post_id": post.id,
            "fingerprint": fingerprint,
            "expires_at": expires_at,
        }
        return {
            "Put": {
                "TableName": self._table,
                "Item": dynamo.to_item(record),
                # TTL deletes lazily (up to days late), so an expired record
                # may still be there: it must not block a new post.
                "ConditionExpression": "attribute_not_exists(PK) OR expires_at < :now",
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _count_backlog(
        self,
        post_id: str,
        delta: int,
        *,
        feed_changed_at: str | None = None,
        feed_deleted: bool = False,
        counter: str = BACKLOG_COUNT,
    ) -> dict:
        """The counter shard's update (of `counter`: the posts to send, or the
        upstream deletes); with `feed_changed_at`, it also bumps the public
        feed marker kept on the same item, naming `post_id` as added (or,
        with `feed_deleted`, deleted). Replay transitions leave the marker
        alone: they change no feed."""
        shard = shard_of(post_id, self._shards)
        update = {
            "Update": {
                "TableName": self._table,
                "Key": dynamo.key(f"COUNTER#backlog#{shard}", "COUNTER"),
                "UpdateExpression": f"ADD {counter} :delta",
                "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
            }
        }
        if feed_changed_at is not None:
            body = update["Update"]
            change = feed_store.marker_change(feed_changed_at, post_id, deleted=feed_deleted)
            body["UpdateExpression"] = f"ADD {counter} :delta, {change.add} SET {change.set}"
            body["ExpressionAttributeValues"] |= change.values
        return update

    def _now_iso(self) -> str:
        return iso_at(self._clock())

    def _count_dead_letters(self, delta: int) -> dict:
        return {
            "Update": {
                "TableName": self._table,
                "Key": dynamo.key(DEAD_LETTER_COUNTER, "COUNTER"),
                "UpdateExpression": "ADD pending :delta",
                "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
            }
        }

    def mark_deleted(self, post: Post, deleted_at: str, charge: Charge | None = None) -> None:
        """Take the post out of every timeline and the backlog, counting the
        delete against its author's write limit (`charge`, if any).

        Conditional on the state we read, so a delete racing the replay job
        either wins (never sent) or loses (StateChanged, and the caller
        re-reads); a pending post also leaves the backlog count atomically.
        Raises RateLimited if the author's window is full.
        """
        update = {
            "Update": {
                "TableName": self._table,
                "Key": dynamo.key(f"POST#{post.id}", POST_SK),
                "UpdateExpression": "SET #state = :deleted, deleted_at = :at REMOVE " + ", ".join(_INDEX_ATTRIBUTES),
                "ConditionExpression": "#state = :expected",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":deleted": {"S": DELETED},
                    ":at": {"S": deleted_at},
                    ":expected": {"S": post.state},
                },
            }
        }
        # Every delete changes the public and the author's feeds; the backlog
        # count moves only if the post was pending.
        changed_at = self._now_iso()
        shard = shard_of(post.id, self._shards)
        items = [
            update,
            self._count_backlog(
                post.id, -1 if post.state == PENDING else 0, feed_changed_at=changed_at, feed_deleted=True
            ),
            feed_store.user_marker_update(self._table, post.author, changed_at, deleted_post_id=post.id),
            feed_store.dirty_user_update(self._table, shard, post.author),
        ]
        if post.state == FAILED:
            items.append(self._count_dead_letters(-1))
        try:
            transact_charged(self._client, self._table, items, "delete post", charge, idempotent_as=post.id)
        except dynamo.TransactionCancelled as cancelled:
            raise StateChanged(post.id) from cancelled

    # -- replay transitions ----------------------------------------------------

    def claim_for_sending(self, post: Post, owner: str, now_iso: str) -> Post:
        """pending (or a crashed run's sending) -> sending, owned by `owner`.

        The caller holds the replay lease, so taking over another run's
        `sending` post is safe: that run is gone, and the resend carries the
        same Idempotency-Key. Raises StateChanged if the post was deleted,
        replayed or dead-lettered meanwhile.
        """
        return self._claim(post, owner, now_iso, PENDING, SENDING)

    def claim_for_deleting(self, post: Post, owner: str, now_iso: str) -> Post:
        """delete_pending (or a crashed run's deleting) -> deleting, owned by
        `owner`: as `claim_for_sending`, and as safe, because a delete sent
        twice finds the copy gone (404), which is done."""
        return self._claim(post, owner, now_iso, DELETE_PENDING, DELETING)

    def _claim(self, post: Post, owner: str, now_iso: str, waiting: str, in_flight: str) -> Post:
        try:
            with unavailable_as_domain_error("claim post"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=dynamo.key(f"POST#{post.id}", POST_SK),
                    UpdateExpression="SET #state = :in_flight, replay_owner = :owner, sending_since = :now "
                    "ADD send_attempts :one",
                    ConditionExpression="#state IN (:waiting, :in_flight)",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={
                        ":in_flight": {"S": in_flight},
                        ":waiting": {"S": waiting},
                        ":owner": {"S": owner},
                        ":now": {"S": now_iso},
                        ":one": {"N": "1"},
                    },
                    ReturnValues="ALL_NEW",
                )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise StateChanged(post.id) from exc
        return _post_from_item(response["Attributes"])

    def mark_replayed(self, post: Post, owner: str, upstream_id: str | None, at: str) -> None:
        """sending -> replayed, leaving the backlog in the same transaction.

        Fenced by `replay_owner`: a run that lost its lease (it stalled past
        the expiry) cannot overwrite the run that took over."""
        update = self._leave_sending(
            post,
            owner,
            "SET #state = :done, upstream_id = :uid, replayed_at = :at "
            "REMOVE BacklogPK, BacklogSK, replay_owner, sending_since",
            {":done": {"S": REPLAYED}, ":uid": _string_or_null(upstream_id), ":at": {"S": at}},
        )
        self._transact_or_state_changed(post, [update, self._count_backlog(post.id, -1)], "mark replayed")

    def mark_failed(self, post: Post, owner: str, reason: str, at: str) -> None:
        """sending -> failed: the post becomes a dead letter and stops
        blocking its author's later posts."""
        update = self._leave_sending(
            post,
            owner,
            "SET #state = :failed, failure_reason = :why, failed_at = :at, "
            "BacklogPK = :dead REMOVE replay_owner, sending_since",
            {":failed": {"S": FAILED}, ":why": {"S": reason}, ":at": {"S": at}, ":dead": {"S": DEAD_LETTER_PARTITION}},
        )
        items = [update, self._count_backlog(post.id, -1), self._count_dead_letters(+1)]
        self._transact_or_state_changed(post, items, "mark failed")

    def queue_upstream_delete(self, post: Post, deleted_at: str, charge: Charge | None = None) -> None:
        """replayed -> delete_pending: the post is deleted here as
        `mark_deleted` deletes it (out of every timeline, feed markers
        bumped), and its copy on the primary joins the upstream deletes.

        Conditional on the post still being replayed, so a concurrent
        delete of it makes one queued delete: the other gets StateChanged.
        Counts against the author's write limit like `mark_deleted`.
        """
        shard = shard_of(post.id, self._shards)
        timeline_keys = [name for index in (BY_AUTHOR_INDEX, PUBLIC_INDEX) for name in index_keys(index)]
        update = {
            "Update": {
                "TableName": self._table,
                "Key": dynamo.key(f"POST#{post.id}", POST_SK),
                "UpdateExpression": "SET #state = :queued, deleted_at = :at, BacklogPK = :deletes, BacklogSK = :id "
                "REMOVE " + ", ".join(timeline_keys),
                "ConditionExpression": "#state = :replayed",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":queued": {"S": DELETE_PENDING},
                    ":at": {"S": deleted_at},
                    ":deletes": {"S": self._upstream_deletes_partition(post.id)},
                    ":id": {"S": post.id},
                    ":replayed": {"S": REPLAYED},
                },
            }
        }
        changed_at = self._now_iso()
        items = [
            update,
            self._count_backlog(
                post.id, +1, feed_changed_at=changed_at, feed_deleted=True, counter=UPSTREAM_DELETES_COUNT
            ),
            feed_store.user_marker_update(self._table, post.author, changed_at, deleted_post_id=post.id),
            feed_store.dirty_user_update(self._table, shard, post.author),
        ]
        try:
            transact_charged(self._client, self._table, items, "queue upstream delete", charge, idempotent_as=post.id)
        except dynamo.TransactionCancelled as cancelled:
            raise StateChanged(post.id) from cancelled

    def mark_deleted_upstream(self, post: Post, owner: str, at: str) -> None:
        """deleting -> deleted: the primary's copy is gone; the post is a
        tombstone like any deleted post. Fenced by `replay_owner`."""
        update = self._leave_in_flight(
            post,
            owner,
            DELETING,
            "SET #state = :deleted, upstream_deleted_at = :at REMOVE BacklogPK, BacklogSK, replay_owner, sending_since",
            {":deleted": {"S": DELETED}, ":at": {"S": at}},
        )
        items = [update, self._count_backlog(post.id, -1, counter=UPSTREAM_DELETES_COUNT)]
        self._transact_or_state_changed(post, items, "mark deleted upstream")

    def mark_delete_failed(self, post: Post, owner: str, reason: str, at: str) -> None:
        """deleting -> delete_failed: the primary refused the delete for good;
        a dead letter, listed and retried like a post that failed to send."""
        update = self._leave_in_flight(
            post,
            owner,
            DELETING,
            "SET #state = :failed, failure_reason = :why, failed_at = :at, "
            "BacklogPK = :dead REMOVE replay_owner, sending_since",
            {
                ":failed": {"S": DELETE_FAILED},
                ":why": {"S": reason},
                ":at": {"S": at},
                ":dead": {"S": DEAD_LETTER_PARTITION},
            },
        )
        items = [
            update,
            self._count_backlog(post.id, -1, counter=UPSTREAM_DELETES_COUNT),
            self._count_dead_letters(+1),
        ]
        self._transact_or_state_changed(post, items, "mark delete failed")

    def requeue_dead_letter(self, post: Post) -> None:
        """failed -> pending: back into the backlog, at its original place
        (its id), so its author's order is kept; delete_failed ->
        delete_pending: back among the upstream deletes."""
        waiting, partition, counter = self._requeue_place(post)
        update = {
            "Update": {
                "TableName": self._table,
                "Key": dynamo.key(f"POST#{post.id}", POST_SK),
                "UpdateExpression": "SET #state = :waiting, BacklogPK = :shard REMOVE failure_reason, failed_at",
                "ConditionExpression": "#state = :failed",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":waiting": {"S": waiting},
                    ":failed": {"S": post.state},
                    ":shard": {"S": partition},
                },
            }
        }
        items = [update, self._count_backlog(post.id, +1, counter=counter), self._count_dead_letters(-1)]
        self._transact_or_state_changed(post, items, "requeue dead letter")

    def _requeue_place(self, post: Post) -> tuple[str, str, str]:
        """A dead letter's state, Backlog partition and counter once requeued."""
        if post.state == DELETE_FAILED:
            return DELETE_PENDING, self._upstream_deletes_partition(post.id), UPSTREAM_DELETES_COUNT
        return PENDING, f"BACKLOG#{shard_of(post.id, self._shards)}", BACKLOG_COUNT

    def _upstream_deletes_partition(self, post_id: str) -> str:
        return f"{UPSTREAM_DELETES_PARTITION}#{shard_of(post_id, self._shards)}"

    def _leave_sending(self, post: Post, owner: str, expression: str, values: dict) -> dict:
        return self._leave_in_flight(post, owner, SENDING, expression, values)

    def _leave_in_flight(self, post: Post, owner: str, in_flight: str, expression: str, values: dict) -> dict:
        return {
            "Update": {
                "TableName": self._table,
                "Key": dynamo.key(f"POST#{post.id}", POST_SK),
                "UpdateExpression": expression,
                "ConditionExpression": "#state = :in_flight AND replay_owner = :owner",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {**values, ":in_flight": {"S": in_flight}, ":owner": {"S": owner}},
            }
        }

    def _transact_or_state_changed(self, post: Post, items: list[dict], what: str) -> None:
        try:
            dynamo.transact(self._client, items, what)
        except dynamo.TransactionCancelled as cancelled:
            raise StateChanged(post.id) from cancelled

    def backlog_window(self, per_shard: int) -> list[Post]:
        """The oldest backlog posts (pending, or sending after a crash), in
        id order, and a true prefix of the whole backlog: a shard that had
        more than it returned bounds the window at its last id, so no older
        post of any author can be missing from it. Per-author order rests
        on this."""
        by_shard = [
            self._query(BACKLOG_INDEX, f"BACKLOG#{shard}", after_id=_BEFORE_ALL_IDS, limit=per_shard)
            for shard in range(self._shards)
        ]
        bounds = [posts[-1].id for posts in by_shard if len(posts) == per_shard]
        window = sorted((post for posts in by_shard for post in posts), key=lambda post: post.id)
        return [post for post in window if not bounds or post.id <= min(bounds)]

    def upstream_delete_window(self, per_shard: int) -> list[Post]:
        """Replayed posts deleted here whose copy on the primary is still to
        be deleted (or is being deleted), up to `per_shard` per shard, in id
        order. Deletes need no order among themselves, so any part will do."""
        window = [
            post
            for shard in range(self._shards)
            for post in self._query(
                BACKLOG_INDEX, f"{UPSTREAM_DELETES_PARTITION}#{shard}", after_id=_BEFORE_ALL_IDS, limit=per_shard
            )
        ]
        return sorted(window, key=lambda post: post.id)

    def dead_letters(self, after_id: str | None, limit: int) -> Page:
        posts = self._query(BACKLOG_INDEX, DEAD_LETTER_PARTITION, after_id=after_id or _BEFORE_ALL_IDS, limit=limit + 1)
        posts = [post for post in posts if post.id != after_id]
        return Page(posts[:limit], len(posts) > limit)

    def dead_letter_count(self) -> int:
        with unavailable_as_domain_error("read dead-letter counter"):
            response = self._client.get_item(
                TableName=self._table, Key=dynamo.key(DEAD_LETTER_COUNTER, "COUNTER"), ConsistentRead=True
            )
        return dynamo.from_item(response["Item"]).get("pending", 0) if "Item" in response else 0

    # -- reads ------------------------------------------------------------

    def get_post(self, post_id: str) -> Post | None:
        with unavailable_as_domain_error("get post"):
            response = self._client.get_item(
                TableName=self._table, Key=dynamo.key(f"POST#{post_id}", POST_SK), ConsistentRead=True
            )
        return _post_from_item(response["Item"]) if "Item" in response else None

    def author_posts(self, author: str, before_id: str | None, limit: int) -> Page:
        posts = self._query(BY_AUTHOR_INDEX, f"USER#{author}", before_id=before_id, limit=limit + 1)
        return Page(posts[:limit], len(posts) > limit)

    def public_posts(self, before_id: str | None, limit: int) -> Page:
        """Newest first across all write shards: each shard is asked for one
        page and the results merged, so a page costs `shards` queries."""

        def one_shard(shard: int) -> list[Post]:
            return self._query(PUBLIC_INDEX, f"PUBLIC#{shard}", before_id=before_id, limit=limit + 1)

        with ThreadPoolExecutor(max_workers=min(self._shards, 16)) as pool:
            merged = [post for posts in pool.map(one_shard, range(self._shards)) for post in posts]
        merged.sort(key=lambda post: post.id, reverse=True)
        return Page(merged[:limit], len(merged) > limit)

    # -- id windows over several partitions (the Mastodon API) ------------------

    def public_partitions(self) -> list[tuple[str, str]]:
        return [(PUBLIC_INDEX, f"PUBLIC#{shard}") for shard in range(self._shards)]

    @staticmethod
    def author_partition(author: str) -> tuple[str, str]:
        return (BY_AUTHOR_INDEX, f"USER#{author}")

    def posts_in_window(
        self, partitions: list[tuple[str, str]], lowest: str, highest: str, limit: int, oldest_first: bool = False
    ) -> Page:
        """Live posts with lowest <= id <= highest from every partition,
        merged: the `limit` newest (or, with `oldest_first`, the `limit`
        oldest), always returned newest first. One query per partition, run
        in parallel; `has_more` says whether the window held more posts."""

        def one(partition: tuple[str, str]) -> list[Post]:
            index, key = partition
            return self._query_window(index, key, lowest, highest, limit + 1, oldest_first)

        if len(partitions) == 1:
            merged = one(partitions[0])
        else:
            with ThreadPoolExecutor(max_workers=min(len(partitions), _WINDOW_WORKERS)) as pool:
                merged = [post for posts in pool.map(one, partitions) for post in posts]
        merged.sort(key=lambda post: post.id, reverse=not oldest_first)
        page = sorted(merged[:limit], key=lambda post: post.id, reverse=True)
        return Page(page, len(merged) > limit)

    def _query_window(
        self, index: str, partition: str, lowest: str, highest: str, limit: int, oldest_first: bool
    ) -> list[Post]:
        hash_key, range_key = index_keys(index)
        with unavailable_as_domain_error(f"query {index}"):
            response = self._client.query(
                TableName=self._table,
                IndexName=index,
                KeyConditionExpression="#pk = :pk AND #sk BETWEEN :low AND :high",
                ExpressionAttributeNames={"#pk": hash_key, "#sk": range_key},
                ExpressionAttributeValues={":pk": {"S": partition}, ":low": {"S": lowest}, ":high": {"S": highest}},
                ScanIndexForward=oldest_first,
                Limit=limit,
            )
        return [_post_from_item(item) for item in response["Items"]]

    def get_posts(self, post_ids: list[str]) -> dict[str, Post]:
        """Several posts by id (eventually consistent): one BatchGetItem per
        100 ids; ids that are not stored are absent from the answer."""
        keys = [dynamo.key(f"POST#{post_id}", POST_SK) for post_id in dict.fromkeys(post_ids)]
        posts = map(_post_from_item, dynamo.batch_get(self._client, self._table, keys, "get posts"))
        return {post.id: post for post in posts}

    def posts_between(self, shard: int, after_id: str, before_id: str, limit: int) -> list[Post]:
        """Live posts of one public shard with after_id < id < before_id,
        oldest first: what the archiver has not archived yet."""
        posts = self._query(
            PUBLIC_INDEX, f"PUBLIC#{shard}", after_id=after_id or _BEFORE_ALL_IDS, before_id=before_id, limit=limit
        )
        return [post for post in posts if after_id < post.id < before_id]

    def _query(
        self, index: str, partition: str, *, limit: int, before_id: str | None = None, after_id: str | None = None
    ) -> list[Post]:
        """One page of an index partition; newest first unless `after_id`
        is given (then oldest first, between the two ids inclusive)."""
        hash_key, range_key = index_keys(index)
        values = {":pk": {"S": partition}, ":before": {"S": before_id or _AFTER_ALL_IDS}}
        condition = "#pk = :pk AND #sk < :before"
        if after_id is not None:
            values[":after"] = {"S": after_id}
            condition = "#pk = :pk AND #sk BETWEEN :after AND :before"
        with unavailable_as_domain_error(f"query {index}"):
            response = self._client.query(
                TableName=self._table,
                IndexName=index,
                KeyConditionExpression=condition,
                ExpressionAttributeNames={"#pk": hash_key, "#sk": range_key},
                ExpressionAttributeValues=values,
                ScanIndexForward=after_id is not None,
                Limit=limit,
            )
        return [_post_from_item(item) for item in response["Items"]]

    # -- backlog ------------------------------------------------------------

    def backlog_size(self) -> int:
        """Posts waiting to be sent: sum of the sharded counters, one
        BatchGetItem, never a scan."""
        return self.backlog_counts().posts

    def backlog_counts(self) -> BacklogCounts:
        """Posts waiting to be sent and copies on the primary waiting to be
        deleted: sums of the two counters the counter shards keep."""
        keys = [dynamo.key(f"COUNTER#backlog#{shard}", "COUNTER") for shard in range(self._shards)]
        totals = dict.fromkeys((BACKLOG_COUNT, UPSTREAM_DELETES_COUNT), 0)
        for item in dynamo.batch_get(self._client, self._table, keys, "read backlog counters", consistent=True):
            values = dynamo.from_item(item)
            for name in totals:
                totals[name] += values.get(name, 0)
        return BacklogCounts(posts=totals[BACKLOG_COUNT], upstream_deletes=totals[UPSTREAM_DELETES_COUNT])

    def oldest_pending(self, limit: int = 1) -> list[Post]:
        """The oldest posts of the backlog, from the sparse Backlog index
        (only pending posts carry its keys): one query per shard."""
        found: list[Post] = []
        for shard in range(self._shards):
            found.extend(self._query(BACKLOG_INDEX, f"BACKLOG#{shard}", after_id=_BEFORE_ALL_IDS, limit=limit))
        found.sort(key=lambda post: post.id)
        return found[:limit]

    # -- archiver checkpoints ----------------------------------------------

    def archive_checkpoint(self, shard: int) -> str:
        with unavailable_as_domain_error("read archive checkpoint"):
            response = self._client.get_item(
                TableName=self._table, Key=dynamo.key(f"ARCHIVE#{shard}", "CHECKPOINT"), ConsistentRead=True
            )
        return dynamo.from_item(response["Item"])["last_id"] if "Item" in response else ""

    def advance_archive_checkpoint(self, shard: int, old: str, new: str) -> bool:
        """Move the checkpoint from `old` to `new`; False if an overlapping
        run moved it first (it archived the same posts under the same keys)."""
        condition = "attribute_not_exists(PK)" if not old else "last_id = :old"
        values = {":new": {"S": new}} | ({":old": {"S": old}} if old else {})
        try:
            with unavailable_as_domain_error("advance archive checkpoint"):
                self._client.update_item(
                    TableName=self._table,
                    Key=dynamo.key(f"ARCHIVE#{shard}", "CHECKPOINT"),
                    UpdateExpression="SET last_id = :new",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _string_or_null(value: str | None) -> dict:
    return {"S": value} if value else {"NULL": True}


def _post_from_item(item: dict) -> Post:
    return _post_from_values(dynamo.from_item(item))


def _post_from_values(values: dict) -> Post:
    return Post.from_record({name: value for name, value in values.items() if name not in _KEY_ATTRIBUTES})
