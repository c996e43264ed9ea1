"""The DynamoDB adapter of home timelines (layout: `home.layout`).

The fan-out writes entries with BatchWriteItem (idempotent puts and deletes,
no conditions); a page is one Query of the owner's partition and one
BatchGetItem of what it shows. devtools/fakes/home.py is the in-memory
stand-in; tests/functional/test_home_store_contract.py holds both to one
behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.aws.schema import BY_AUTHOR_INDEX
from chalicelib.core.models import MIRRORED, Post
from chalicelib.home import layout
from chalicelib.home.layout import Entry
from chalicelib.mastodon.follows import FOLLOWERS_PREFIX, FOLLOWING_PREFIX, STATS_SK
from chalicelib.posts import items as posts_layout


@dataclass(frozen=True)
class Audience:
    """An author's follower count, and whether their posts are merged at
    read rather than fanned out (sticky once set)."""

    followers: int = 0
    merged_at_read: bool = False


@dataclass(frozen=True)
class PageItems:
    """What one page's BatchGetItem found: the posts by id, the accounts the
    owner's home merges at read, the owner's follows and unfollows the
    stream has not settled yet (`home.layout`), and (with the mirror) the
    suspended authors among the page's."""

    posts: dict[str, Post]
    merged: frozenset[str] = frozenset()
    suspended: frozenset[str] = frozenset()
    backfilling: frozenset[str] = frozenset()
    unfollowing: frozenset[str] = frozenset()


class HomeStore:
    def __init__(self, client, table_name: str, shards: int, *, reads_mirror: bool = False) -> None:
        self._client = client
        self._table = table_name
        self._shards = shards
        self._reads_mirror = reads_mirror

    # -- entries -----------------------------------------------------------

    def put_entries(self, entries: list[Entry]) -> None:
        requests = [{"PutRequest": {"Item": layout.entry_item(entry)}} for entry in _unique(entries)]
        dynamo.batch_write(self._client, self._table, requests, "fan out posts")

    def delete_entries(self, entries: list[Entry]) -> None:
        keys = [layout.entry_key(entry.owner, entry.post_id) for entry in _unique(entries)]
        dynamo.batch_write(self._client, self._table, [{"DeleteRequest": {"Key": key}} for key in keys], "unfan posts")

    def entries(self, owner: str, lowest: str, highest: str, limit: int, oldest_first: bool = False) -> list[Entry]:
        """The owner's entries with lowest <= id <= highest, newest first
        (oldest first with `oldest_first`), at most `limit`: one Query."""
        with unavailable_as_domain_error("read home"):
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="PK = :pk AND SK BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":pk": {"S": layout.home_partition(owner)},
                    ":low": {"S": lowest},
                    ":high": {"S": highest},
                },
                ScanIndexForward=oldest_first,
                Limit=limit,
            )
        return [layout.entry_from_item(item) for item in response["Items"]]

    def all_entries(self, owner: str) -> list[Entry]:
        """Every entry of the owner, newest first (a trim, an unfollow): one
        Query per MB, so one for a partition trimmed to HOME_MAX_ITEMS."""
        values = {":pk": {"S": layout.home_partition(owner)}}
        items = self._query_all("read home", "PK = :pk", values, ScanIndexForward=False)
        return [layout.entry_from_item(item) for item in items]

    def page_items(self, owner: str, entries: list[Entry]) -> PageItems:
        """One BatchGetItem (per 100 keys): each entry's post at its one
        key, the owner's merged accounts and unsettled follows, and with the
        mirror the page's authors (to leave out the suspended ones)."""
        keys = [self._post_key(entry) for entry in {entry.post_id: entry for entry in entries}.values()]
        keys += [layout.merged_key(owner), _stats_key(owner)]
        if self._reads_mirror:
            keys += [dynamo.key(f"USER#{author}", "PROFILE") for author in dict.fromkeys(e.author for e in entries)]
        posts: dict[str, Post] = {}
        sets: dict[str, frozenset[str]] = {}
        suspended: set[str] = set()
        for item in dynamo.batch_get(self._client, self._table, keys, "read home posts"):
            sk = item["SK"]["S"]
            if sk == layout.MERGED_SK:
                sets["merged"] = _string_set(item, "accounts")
            elif sk == STATS_SK:
                sets["backfilling"] = _string_set(item, layout.BACKFILLING)
                sets["unfollowing"] = _string_set(item, layout.UNFOLLOWING)
            elif sk == "PROFILE":
                if item.get("suspended", {}).get("BOOL"):
                    suspended.add(item["username"]["S"])
            else:
                post = posts_layout.post_from_item(item)
                posts[post.id] = post
        return PageItems(posts, suspended=frozenset(suspended), **sets)

    def _post_key(self, entry: Entry) -> dict:
        if entry.mirrored:
            return posts_layout.mirrored_post_key(entry.post_id, self._shards)
        return posts_layout.post_key(entry.post_id)

    # -- what the fan-out reads --------------------------------------------

    def audience(self, author: str) -> Audience:
        """The author's follower count and flag: one consistent GetItem."""
        with unavailable_as_domain_error("read follow counts"):
            response = self._client.get_item(
                TableName=self._table,
                Key=_stats_key(author),
                ConsistentRead=True,
                ProjectionExpression="followers, #flag",
                ExpressionAttributeNames={"#flag": layout.MERGED_FLAG},
            )
        values = dynamo.from_item(response.get("Item", {}))
        return Audience(int(values.get("followers", 0)), bool(values.get(layout.MERGED_FLAG)))

    def followers(self, author: str) -> list[str]:
        """Who follows the author: consistent Queries of `FOLLOWERS#<author>`
        (keys only), one per MB."""
        values = {":pk": {"S": FOLLOWERS_PREFIX + author}}
        items = self._query_all("list followers", "PK = :pk", values, ConsistentRead=True, ProjectionExpression="SK")
        return [item["SK"]["S"] for item in items]

    def newest_posts(self, author: str, limit: int) -> list[Entry]:
        """The author's newest live posts (ByAuthor), as entries of nobody's
        home yet (owner ""): a follow's backfill."""
        posts = posts_layout.query_posts(
            self._client, self._table, BY_AUTHOR_INDEX, posts_layout.author_partition(author), limit=limit
        )
        return [Entry("", post.id, post.author, post.state == MIRRORED) for post in posts]

    # -- accounts merged at read -------------------------------------------

    def mark_merged_at_read(self, author: str) -> None:
        with unavailable_as_domain_error("flag a followed account"):
            self._client.update_item(
                TableName=self._table,
                Key=_stats_key(author),
                UpdateExpression="SET #flag = :true",
                ExpressionAttributeNames={"#flag": layout.MERGED_FLAG},
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )

    def add_merged(self, owner: str, author: str, *, while_following: bool = False) -> bool:
        """Add `author` to the owner's merged accounts; with
        `while_following`, only if the owner follows the author (one
        transaction with a check of the edge, so a racing unfollow cannot be
        undone). False if that check failed."""
        update = {"Update": {"TableName": self._table, "Key": layout.merged_key(owner), **_set_change("ADD", author)}}
        if not while_following:
            with unavailable_as_domain_error("merge a followed account"):
                self._client.update_item(**update["Update"])
            return True
        check = {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": dynamo.key(FOLLOWING_PREFIX + owner, author),
                "ConditionExpression": "attribute_exists(PK)",
            }
        }
        try:
            dynamo.transact(self._client, [check, update], "merge a followed account")
        except dynamo.TransactionCancelled:
            return False
        return True

    def merging(self, owners: list[str], author: str) -> set[str]:
        """The owners whose merged accounts hold `author` already: one
        BatchGetItem per 100 owners."""
        keys = [layout.merged_key(owner) for owner in dict.fromkeys(owners)]
        found = dynamo.batch_get(self._client, self._table, keys, "read merged accounts")
        return {
            item["PK"]["S"].removeprefix("USER#") for item in found if author in item.get("accounts", {}).get("SS", [])
        }

    def remove_merged(self, owner: str, author: str) -> None:
        with unavailable_as_domain_error("unmerge a followed account"):
            self._client.update_item(
                TableName=self._table, Key=layout.merged_key(owner), **_set_change("DELETE", author)
            )

    # -- follows made for the home at once (`home.layout`) -----------------

    def settle_follow(self, owner: str, followee: str) -> None:
        """The followee is backfilled (or merged): out of `home_backfilling`."""
        self._take_out(owner, layout.BACKFILLING, followee, "settle a follow")

    def settle_unfollow(self, owner: str, followee: str) -> None:
        """The followee's entries are gone: out of `home_unfollowing`."""
        self._take_out(owner, layout.UNFOLLOWING, followee, "settle an unfollow")

    def _take_out(self, owner: str, attribute: str, member: str, what: str) -> None:
        with unavailable_as_domain_error(what):
            self._client.update_item(
                TableName=self._table, Key=_stats_key(owner), **_set_change("DELETE", member, attribute)
            )

    def _query_all(self, what: str, condition: str, values: dict, **extra) -> list[dict]:
        items: list[dict] = []
        start = None
        while True:
            paging = {"ExclusiveStartKey": start} if start else {}
            with unavailable_as_domain_error(what):
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    **extra,
                    **paging,
                )
            items += response["Items"]
            start = response.get("LastEvaluatedKey")
            if not start:
                return items


def _set_change(action: str, member: str, attribute: str = "accounts") -> dict:
    """ADD or DELETE one member of a string set (HOME_MERGED's `accounts`
    unless told)."""
    return {
        "UpdateExpression": f"{action} #set :a",
        "ExpressionAttributeNames": {"#set": attribute},
        "ExpressionAttributeValues": {":a": {"SS": [member]}},
    }


def _stats_key(username: str) -> dict:
    return dynamo.key(f"USER#{username}", STATS_SK)


def _string_set(item: dict, attribute: str) -> frozenset[str]:
    return frozenset(item.get(attribute, {}).get("SS", []))


def _unique(entries: list[Entry]) -> list[Entry]:
    """One request per key: BatchWriteItem refuses a key twice."""
    return list({(entry.owner, entry.post_id): entry for entry in entries}.values())
