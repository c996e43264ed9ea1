"""A lease: at most one replay run sends at a time.

A conditional put takes it when it is free or expired; the holder's id is
stored with it and every post the run claims is fenced by that id, so a
holder that stalls past the expiry cannot overwrite the run that took over.
"""

from __future__ import annotations

import time

from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error


class Lease:
    def __init__(self, client, table_name: str, name: str, clock=time.time) -> None:
        self._client = client
        self._table = table_name
        self._key = dynamo.key(f"LEASE#{name}", "LEASE")
        self._clock = clock

    def acquire(self, owner: str, seconds: float) -> bool:
        now_ms = int(self._clock() * 1000)
        item = {**dynamo.from_item(self._key), "owner": owner, "expires_at_ms": now_ms + int(seconds * 1000)}
        try:
            with unavailable_as_domain_error("acquire lease"):
                self._client.put_item(
                    TableName=self._table,
                    Item=dynamo.to_item(item),
                    # Free, expired (its holder died), or already ours.
                    ConditionExpression="attribute_not_exists(PK) OR expires_at_ms < :now OR #owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":now": {"N": str(now_ms)}, ":owner": {"S": owner}},
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, owner: str) -> None:
        try:
            with unavailable_as_domain_error("release lease"):
                self._client.delete_item(
                    TableName=self._table,
                    Key=self._key,
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":owner": {"S": owner}},
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # it expired and someone else holds it now: not ours to free
