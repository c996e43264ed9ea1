"""Shared fixtures: fake AWS credentials, moto, and the Chalice test client."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

ADMIN_TOKEN = "test-admin-token-not-a-secret"
REGION = "us-east-1"
TABLE = "lifeboat-local"
BUCKET = "lifeboat-local"


@pytest.fixture
def aws_credentials(monkeypatch):
    """Fake credentials, and nothing that could reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN_TOKEN)


@pytest.fixture
def moto(aws_credentials):
    """moto for this test, with the table and bucket made; every client the
    app builds is built after the mock starts. The table's stream reaches
    the app's stream handler before each DynamoDB request (synchronously:
    devtools/streams.py), so a read sees what the stream derived from the
    writes before it."""
    from moto import mock_aws

    import app
    from chalicelib import wiring
    from chalicelib.aws import clients as aws
    from chalicelib.aws import schema
    from devtools.localaws import patch_moto_dynamodb, stream_end
    from devtools.streams import StreamPoller, deliver_synchronously, stream_arn, streams_client

    patch_moto_dynamodb()
    with mock_aws():
        wiring.reset()
        dynamodb = aws.new_client("dynamodb")
        schema.ensure_resources(dynamodb, aws.new_client("s3"), TABLE, BUCKET)
        poller = StreamPoller(
            streams_client(),
            stream_arn(dynamodb, TABLE),
            lambda event: app.stream_changes(event, None),
        )
        with deliver_synchronously(poller, lambda: stream_end(TABLE)) as delivery:
            _stream[:] = [delivery]
            yield
            _stream.clear()
        wiring.reset()


_stream: list = []


def below_the_stream():
    """A block whose writes the stream consumer never sees (a test that
    changes an item behind the app's back, as an index's lag would)."""
    return _stream[0].unseen()


def stream_lagging():
    """A block whose writes reach the stream consumer only after it (the
    stream's lag, held open)."""
    return _stream[0].lagging()


@dataclass
class Reply:
    status: int
    headers: dict
    body: object


class Api:
    """The Chalice test client with JSON and bearer tokens filled in."""

    def __init__(self, client) -> None:
        self._client = client

    def call(
        self,
        method: str,
        path: str,
        body=None,
        token: str | None = None,
        headers: dict | None = None,
        raw: bytes | str | None = None,
    ) -> Reply:
        sent = {"Content-Type": "application/json"}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self._client.http.request(method, path, headers=sent, body=payload)
        text = response.body.decode("utf-8") if response.body else ""
        return Reply(response.status_code, dict(response.headers), json.loads(text) if text else None)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def new_user(self, username: str) -> str:
        reply = self.post("/admin/users", {"username": username}, token=ADMIN_TOKEN)
        assert reply.status == 201, reply.body
        return reply.body["token"]


@pytest.fixture
def api(moto):
    from chalice.test import Client

    import app
    from devtools.local_gateway import install_api_gateway_routing

    install_api_gateway_routing()  # the catch-all route, as API Gateway matches it

    with Client(app.app, stage_name="local") as client:
        yield Api(client)


class Outage:
    """Makes an AWS client of the app fail as in a real outage, below boto3.

    botocore runs every "before-send" handler and keeps the first answer, so
    moto would still serve (and store) a request we answered ourselves:
    raising is the only way to stop the request from reaching it. The errors
    raised are the ones boto3 raises once its own retries are spent.
    """

    def __init__(self) -> None:
        self._handlers: list[tuple[object, object]] = []

    def _install(self, client, event_prefix: str, failure) -> None:
        def fail_matching(request, event_name, **_):
            if event_name.startswith(event_prefix):
                error = failure(request, event_name.rsplit(".", 1)[-1])
                if error is not None:
                    raise error

        client.meta.events.register_first("before-send", fail_matching)
        self._handlers.append((client, fail_matching))

    def unreachable(self, client, *operations: str) -> None:
        """Every call of the client fails to connect, or only `operations`."""
        from botocore.exceptions import EndpointConnectionError

        prefix = f"before-send.{client.meta.service_model.endpoint_prefix}"

        def fail(request, operation):
            if operations and operation not in operations:
                return None
            return EndpointConnectionError(endpoint_url=request.url)

        self._install(client, prefix, fail)

    def throttled(self, client, operation: str, code: str = "ProvisionedThroughputExceededException") -> None:
        from botocore.exceptions import ClientError

        error = {"Error": {"Code": code, "Message": "Rate exceeded"}}
        self._install(client, f"before-send.dynamodb.{operation}", lambda _, name: ClientError(error, name))

    def transaction_cancelled(self, client, reason: str, times: int | None = None) -> None:
        """TransactWriteItems is cancelled with `reason` on its second item
        (the backlog counter of a post: the hot item) and None on the
        others, as DynamoDB reports a throttled or conflicting item; the
        first `times` calls only, or all of them."""
        from botocore.exceptions import ClientError

        left = [times]

        def cancel(request, name):
            if left[0] is not None:
                if left[0] <= 0:
                    return None
                left[0] -= 1
            count = len(json.loads(request.body)["TransactItems"])
            codes = ["None", reason, *["None"] * (count - 2)][:count]
            error = {
                "Error": {
                    "Code": "TransactionCanceledException",
                    "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                    f"[{', '.join(codes)}]",
                },
                "CancellationReasons": [{"Code": code} for code in codes],
            }
            return ClientError(error, name)

        self._install(client, "before-send.dynamodb.TransactWriteItems", cancel)

    def answers_lost(self, client, operation: str, times: int = 1) -> None:
        """The request reaches moto and takes effect, but its answer is lost
        to a read timeout, the first `times` times: botocore then retries a
        request that has already committed, as it does when DynamoDB is
        slow. Registered after moto's own handler, so moto has served it."""
        from botocore.exceptions import ReadTimeoutError

        left = [times]

        def lose_answer(request, event_name, **_):
            if event_name == f"before-send.dynamodb.{operation}" and left[0] > 0:
                left[0] -= 1
                raise ReadTimeoutError(endpoint_url=request.url)

        client.meta.events.register("before-send", lose_answer)
        self._handlers.append((client, lose_answer))

    def end(self) -> None:
        for client, handler in self._handlers:
            client.meta.events.unregister("before-send", handler)
        self._handlers.clear()


@pytest.fixture
def outage():
    broken = Outage()
    yield broken
    broken.end()
