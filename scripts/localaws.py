"""moto as the local AWS, for ./scripts/run and the tests.

moto's TransactWriteItems snapshots whole tables and restores the snapshot
when a condition fails, so two transactions running at once can erase each
other's writes. Real DynamoDB isolates transactions (serializably), which
the write path relies on. We serialize moto's DynamoDB requests so the local
stack and the tests keep DynamoDB's guarantee instead of moto's race.
"""

from __future__ import annotations

import functools
import threading

_LOCK = threading.RLock()


def serialize_moto_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "serialized_by_lifeboat", False):
        return

    @functools.wraps(original)
    def serialized(self):
        with _LOCK:
            return original(self)

    serialized.serialized_by_lifeboat = True
    DynamoHandler.call_action = serialized


def start_moto_server():
    """An in-process moto server on a free loopback port; returns (server, url)."""
    from moto.server import ThreadedMotoServer

    serialize_moto_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{server._server.server_port}"
