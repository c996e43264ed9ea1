"""Notifications written on Lifeboat: a reply to someone's post is a
`mention` notification for them, as in Mastodon (a reply mentions the
author it answers). Lifeboat parses no @mentions in text, so replies are
the only notifications it has.

One item per notification, `NOTIFY#<recipient>` / `<reply's post id>`,
written when the reply is created through the Mastodon API (one PutItem,
after the post; a reply that went to the S3 spool notifies no one). Pages
are one Query over the recipient's partition by the same id windows as the
timelines; a reply deleted since is left out when read (docs/DESIGN.md,
"The first screen").
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error

NOTIFY_PREFIX = "NOTIFY#"
MENTION = "mention"


@dataclass(frozen=True)
class NotificationPage:
    post_ids: list[str]
    has_more: bool


class NotificationStore:
    def __init__(self, client, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, recipient: str, post_id: str, sender: str, created_at: str) -> None:
        """Record that `post_id`, by `sender`, replies to `recipient`; a
        repeat (an idempotent retry of the post) writes the same item."""
        item = {"PK": NOTIFY_PREFIX + recipient, "SK": post_id, "type": MENTION, "sender": sender}
        with unavailable_as_domain_error("add notification"):
            self._client.put_item(TableName=self._table, Item=dynamo.to_item({**item, "created_at": created_at}))

    def window(self, recipient: str, lowest: str, highest: str, limit: int, oldest_first: bool) -> NotificationPage:
        with unavailable_as_domain_error("read notifications"):
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="PK = :pk AND SK BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":pk": {"S": NOTIFY_PREFIX + recipient},
                    ":low": {"S": lowest},
                    ":high": {"S": highest},
                },
                ScanIndexForward=oldest_first,
                Limit=limit + 1,
                ProjectionExpression="SK",
            )
        post_ids = [item["SK"]["S"] for item in response["Items"]]
        return NotificationPage(post_ids[:limit], len(post_ids) > limit)


def render_notification(status: dict) -> dict:
    """The Notification of a reply (`status`, rendered): its id is the
    status's, so the timelines' id windows page notifications too."""
    return {
        "id": status["id"],
        "type": MENTION,
        "group_key": f"ungrouped-{status['id']}",
        "created_at": status["created_at"],
        "account": status["account"],
        "status": status,
    }


def render_grouped(notifications: list[dict]) -> dict:
    """GET /api/v2/notifications: each reply its own group (Mastodon
    groups only favourites, boosts and follows). `most_recent_notification_id`
    is a number, as Mastodon sends it (its schema says integer), though the
    page ids are strings; at 63 bits it is past JavaScript's exact integers,
    and `page_max_id` holds the same id exactly."""
    accounts = {item["account"]["id"]: item["account"] for item in notifications}
    groups = [
        {
            "group_key": item["group_key"],
            "notifications_count": 1,
            "type": MENTION,
            "most_recent_notification_id": int(item["id"]),
            "page_min_id": item["id"],
            "page_max_id": item["id"],
            "latest_page_notification_at": item["created_at"],
            "sample_account_ids": [item["account"]["id"]],
            "status_id": item["status"]["id"],
        }
        for item in notifications
    ]
    statuses = [item["status"] for item in notifications]
    return {"accounts": list(accounts.values()), "statuses": statuses, "notification_groups": groups}
