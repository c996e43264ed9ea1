"""AWS client construction and the translation of 'service unreachable'.

Clients are built by `chalicelib.wiring`, once per container; this module
only knows how: short timeouts and few retries, because a post that cannot
reach DynamoDB quickly must still have time to reach the S3 spool within
API Gateway's 29-second limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from chalicelib.errors import StoreUnavailable

CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
)

# Error codes AWS uses for "not now" as opposed to "never": a throttled or
# failing service, where the same request may succeed later.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        # A retry (same ClientRequestToken) arriving while the first attempt
        # of a transaction is still running: it may yet commit, or not.
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "503",
        "500",
    }
)
_NETWORK_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def new_client(service: str, **overrides):
    """A client from the container's one boto3 session (a session loads the
    service models once; creating clients from it is cheap but, unlike using
    them, not thread-safe, hence the lock)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, config=CLIENT_CONFIG, **overrides)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@contextmanager
def unavailable_as_domain_error(what: str) -> Iterator[None]:
    """Turn throttling, 5xx and network failures into StoreUnavailable."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in TRANSIENT_ERROR_CODES:
            raise StoreUnavailable(f"{what}: {error_code(exc)}") from exc
        raise
    except _NETWORK_ERRORS as exc:
        raise StoreUnavailable(f"{what}: {type(exc).__name__}") from exc
