"""The DynamoDB adapter of the replay's state machine over post items.

pending -> sending -> replayed (or failed), delete_pending -> deleting ->
deleted (or delete_failed), dead letters back into the backlog, and the
reads the replay and /status make of it: the windows, the counters, the
oldest pending post. Every transition is a conditional write, fenced by
the run that claimed the post (`replay_owner`); losing the race raises
StateChanged. The key layout is `posts.items`'.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.aws.schema import BACKLOG_INDEX
from chalicelib.core.ids import millis_from_iso
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
from chalicelib.errors import StateChanged
from chalicelib.mirror.layout import upstream_marker_pk
from chalicelib.mirror.state import STATE_KEY as MIRROR_STATE_KEY
from chalicelib.mirror.state import MirrorState, state_from_item
from chalicelib.posts import items as layout
from chalicelib.posts.items import BEFORE_ALL_IDS, DEAD_LETTER_PARTITION
from chalicelib.posts.store import Page
from chalicelib.stream.store import StreamStore, status_from_items

# How long the mark of a replayed post is kept: the mirror's change feed
# brings the post back within minutes, or within days after a long lag.
REPLAY_MARKER_DAYS = 30
# The most posts a batched transition takes: a confirm is two writes (the
# post and its replay marker), a transaction at most 100.
MAX_BATCH_POSTS = 25


@dataclass(frozen=True)
class BacklogCounts:
    # Posts waiting to be sent, and copies on the primary waiting to be deleted.
    posts: int
    upstream_deletes: int


@dataclass(frozen=True)
class BacklogStatus:
    """What `/status` tells of the backlog, as the stream counted it (one
    read); with `mirror`, the mirror's state read in the same request."""

    counts: BacklogCounts
    dead_letters: int = 0
    oldest_pending_id: str | None = None
    oldest_stale: bool = False
    mirror: MirrorState | None = None


class BacklogStore:
    """The replay side of post items. Takes its client so tests can swap it."""

    def __init__(self, client, table_name: str, shards: int) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards

    def get_post(self, post_id: str) -> Post | None:
        # A parent may be a mirrored post of the primary.
        return layout.read_post(self._client, self._table, post_id, self._shards)

    # -- claims ---------------------------------------------------------------

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
                update = self._claim_update(post, owner, now_iso, waiting, in_flight)
                response = self._client.update_item(**update["Update"], ReturnValues="ALL_NEW")
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise StateChanged(post.id) from exc
        return layout.post_from_item(response["Attributes"])

    def release_claim(self, post: Post, owner: str) -> None:
        """sending -> pending (deleting -> delete_pending) for a post this
        run claimed but did not send (its turn came past the deadline), with
        its attempt taken back. Fenced by `replay_owner`."""
        in_flight, waiting = (DELETING, DELETE_PENDING) if post.awaits_upstream_delete else (SENDING, PENDING)
        update = self._leave_in_flight(
            post,
            owner,
            in_flight,
            "SET #state = :waiting REMOVE replay_owner, sending_since ADD send_attempts :minus_one",
            {":waiting": {"S": waiting}, ":minus_one": {"N": "-1"}},
        )
        self._transact_or_state_changed(post, [update], "release claim")

    def claim_many_for_sending(self, posts: list[Post], owner: str, now_iso: str) -> set[str]:
        """`claim_for_sending` for up to MAX_BATCH_POSTS posts in one
        TransactWriteItems; the ids of those that moved meanwhile (not
        claimed). The others are claimed, whatever those did."""
        groups = [(post.id, [self._claim_update(post, owner, now_iso, PENDING, SENDING)]) for post in posts]
        return self._transact_groups(groups, "claim posts")

    def _claim_update(self, post: Post, owner: str, now_iso: str, waiting: str, in_flight: str) -> dict:
        return {
            "Update": {
                "TableName": self._table,
                "Key": layout.post_key(post.id),
                "UpdateExpression": "SET #state = :in_flight, replay_owner = :owner, sending_since = :now "
                "ADD send_attempts :one",
                "ConditionExpression": "#state IN (:waiting, :in_flight)",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":in_flight": {"S": in_flight},
                    ":waiting": {"S": waiting},
                    ":owner": {"S": owner},
                    ":now": {"S": now_iso},
                    ":one": {"N": "1"},
                },
            }
        }

    # -- settling a claimed post ------------------------------------------------

    def mark_replayed(self, post: Post, owner: str, upstream_id: str | None, at: str) -> None:
        """sending -> replayed, leaving the backlog in the same transaction.

        Fenced by `replay_owner`: a run that lost its lease (it stalled past
        the expiry) cannot overwrite the run that took over."""
        self._transact_or_state_changed(post, self._replayed_writes(post, owner, upstream_id, at), "mark replayed")

    def mark_many_replayed(self, sent: list[tuple[Post, str | None]], owner: str, at: str) -> set[str]:
        """`mark_replayed` for up to MAX_BATCH_POSTS (post, upstream id)
        pairs in one TransactWriteItems; the ids of the posts fenced (not
        marked). Two posts the primary gave the same id would write one
        marker twice, which a transaction refuses: the later ones go in
        their own transactions."""
        groups, later, markers = [], [], set()
        for post, upstream_id in sent:
            (later if upstream_id and upstream_id in markers else groups).append(
                (post.id, self._replayed_writes(post, owner, upstream_id, at))
            )
            markers.add(upstream_id)
        fenced = self._transact_groups(groups, "mark posts replayed")
        for group in later:
            fenced |= self._transact_groups([group], "mark posts replayed")
        return fenced

    def _replayed_writes(self, post: Post, owner: str, upstream_id: str | None, at: str) -> list[dict]:
        update = self._leave_in_flight(
            post,
            owner,
            SENDING,
            "SET #state = :done, upstream_id = :uid, replayed_at = :at "
            "REMOVE BacklogPK, BacklogSK, replay_owner, sending_since",
            {":done": {"S": REPLAYED}, ":uid": layout.string_or_null(upstream_id), ":at": {"S": at}},
        )
        writes = [update]
        if upstream_id:
            writes.append(self._put_replay_marker(post.id, upstream_id, at))
        return writes

    def _put_replay_marker(self, post_id: str, upstream_id: str, at: str) -> dict:
        """`UPSTREAM#<upstream_id>`: the primary's id of a post we sent, so
        the mirror knows it when the change feed brings it back."""
        expires = millis_from_iso(at) // 1000 + REPLAY_MARKER_DAYS * 86_400
        item = {"PK": upstream_marker_pk(upstream_id), "SK": "POST", "post_id": post_id, "expires_at": expires}
        return {"Put": {"TableName": self._table, "Item": dynamo.to_item(item)}}

    def mark_failed(self, post: Post, owner: str, reason: str, at: str) -> None:
        """sending -> failed: the post becomes a dead letter and stops
        blocking its author's later posts."""
        update = self._leave_in_flight(
            post,
            owner,
            SENDING,
            "SET #state = :failed, failure_reason = :why, failed_at = :at, "
            "BacklogPK = :dead REMOVE replay_owner, sending_since",
            {":failed": {"S": FAILED}, ":why": {"S": reason}, ":at": {"S": at}, ":dead": {"S": DEAD_LETTER_PARTITION}},
        )
        self._transact_or_state_changed(post, [update], "mark failed")

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
        self._transact_or_state_changed(post, [update], "mark deleted upstream")

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
        self._transact_or_state_changed(post, [update], "mark delete failed")

    def requeue_dead_letter(self, post: Post) -> None:
        """failed -> pending: back into the backlog, at its original place
        (its id), so its author's order is kept; delete_failed ->
        delete_pending: back among the upstream deletes."""
        waiting, partition = self._requeue_place(post)
        update = {
            "Update": {
                "TableName": self._table,
                "Key": layout.post_key(post.id),
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
        self._transact_or_state_changed(post, [update], "requeue dead letter")

    def _requeue_place(self, post: Post) -> tuple[str, str]:
        """A dead letter's state and Backlog partition once requeued."""
        shard = layout.shard_of(post.id, self._shards)
        if post.state == DELETE_FAILED:
            return DELETE_PENDING, layout.upstream_deletes_partition(shard)
        return PENDING, layout.backlog_partition(shard)

    def _leave_in_flight(self, post: Post, owner: str, in_flight: str, expression: str, values: dict) -> dict:
        return {
            "Update": {
                "TableName": self._table,
                "Key": layout.post_key(post.id),
                "UpdateExpression": expression,
                "ConditionExpression": "#state = :in_flight AND replay_owner = :owner",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {**values, ":in_flight": {"S": in_flight}, ":owner": {"S": owner}},
            }
        }

    def _transact_or_state_changed(self, post: Post, writes: list[dict], what: str) -> None:
        """The transition's writes: one UpdateItem, or (with the replay
        marker) a transaction. The counts follow on the stream."""
        if len(writes) == 1:
            try:
                with unavailable_as_domain_error(what):
                    self._client.update_item(**writes[0]["Update"])
            except self._client.exceptions.ConditionalCheckFailedException as exc:
                raise StateChanged(post.id) from exc
            return
        try:
            dynamo.transact(self._client, writes, what)
        except dynamo.TransactionCancelled as cancelled:
            raise StateChanged(post.id) from cancelled

    def _transact_groups(self, groups: list[tuple[str, list[dict]]], what: str) -> set[str]:
        """Each group's writes (one post's transition) in one transaction
        with the others'; a group whose condition fails is dropped and the
        rest tried again. The ids of the dropped groups."""
        failed: set[str] = set()
        while groups:
            try:
                dynamo.transact(self._client, [write for _, writes in groups for write in writes], what)
                return failed
            except dynamo.TransactionCancelled as cancelled:
                kept, index = [], 0
                for post_id, writes in groups:
                    if any(cancelled.failed(index + n) for n in range(len(writes))):
                        failed.add(post_id)
                    else:
                        kept.append((post_id, writes))
                    index += len(writes)
                groups = kept
        return failed

    # -- reads --------------------------------------------------------------------

    def backlog_window(self, per_shard: int) -> list[Post]:
        """The oldest backlog posts (pending, or sending after a crash), in
        id order, and a true prefix of the whole backlog: a shard that had
        more than it returned bounds the window at its last id, so no older
        post of any author can be missing from it. Per-author order rests
        on this."""
        by_shard = [
            self._oldest_first(layout.backlog_partition(shard), per_shard, BEFORE_ALL_IDS)
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
            for post in self._oldest_first(layout.upstream_deletes_partition(shard), per_shard, BEFORE_ALL_IDS)
        ]
        return sorted(window, key=lambda post: post.id)

    def dead_letters(self, after_id: str | None, limit: int) -> Page:
        posts = self._oldest_first(DEAD_LETTER_PARTITION, limit + 1, after_id or BEFORE_ALL_IDS)
        posts = [post for post in posts if post.id != after_id]
        return Page(posts[:limit], len(posts) > limit)

    def dead_letter_count(self) -> int:
        return self.status().dead_letters

    def backlog_size(self) -> int:
        """Posts waiting to be sent, as the stream counted them."""
        return self.backlog_counts().posts

    def backlog_counts(self) -> BacklogCounts:
        return self.status().counts

    def status(self, with_mirror: bool = False) -> BacklogStatus:
        """The counts, dead letters and oldest pending post the stream keeps
        (`stream.store`): one BatchGetItem, whatever WRITE_SHARDS is, with
        the mirror's state in it too if asked."""
        also = [dynamo.key(*MIRROR_STATE_KEY)] if with_mirror else []
        items = self._stream().status_items(also)
        stream = status_from_items(items)
        mirror = None
        if with_mirror:
            state_pk = MIRROR_STATE_KEY[0]
            mirror = state_from_item(next((item for item in items if item["PK"]["S"] == state_pk), {}))
        return BacklogStatus(
            counts=BacklogCounts(posts=stream.pending, upstream_deletes=stream.deletes),
            dead_letters=stream.dead_letters,
            oldest_pending_id=stream.oldest_pending_id,
            oldest_stale=stream.oldest_stale,
            mirror=mirror,
        )

    def settle_oldest(self, status: BacklogStatus) -> str | None:
        """The oldest pending post's id. Once the stream saw the recorded one
        leave the backlog, the next one is looked up (one query per shard,
        only then) and recorded in its place."""
        if not status.oldest_stale:
            return status.oldest_pending_id if status.counts.posts else None
        found = self.oldest_pending()
        oldest = found[0].id if found else None
        self._stream().replace_stale_oldest(status.oldest_pending_id, oldest)
        return oldest

    def _stream(self) -> StreamStore:
        return StreamStore(self._client, self._table, self._shards)

    def oldest_pending(self, limit: int = 1) -> list[Post]:
        """The oldest posts of the backlog, from the sparse Backlog index
        (only pending posts carry its keys): one query per shard."""
        found: list[Post] = []
        for shard in range(self._shards):
            found.extend(self._oldest_first(layout.backlog_partition(shard), limit, BEFORE_ALL_IDS))
        found.sort(key=lambda post: post.id)
        return found[:limit]

    def _oldest_first(self, partition: str, limit: int, after_id: str) -> list[Post]:
        return layout.query_posts(self._client, self._table, BACKLOG_INDEX, partition, limit=limit, after_id=after_id)
