"""Start ./scripts/run as a real subprocess on a free port, and talk HTTP to it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from devtools.stack_process import RunningStack, start, wait_for  # noqa: F401 (the e2e tests wait with it)


@dataclass
class Reply:
    status: int
    headers: dict
    body: object


def http(method: str, url: str, body=None, token: str | None = None, headers: dict | None = None) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return Reply(response.status, dict(response.headers), json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return Reply(error.code, dict(error.headers), json.loads(raw) if raw else None)


class LocalStack(RunningStack):
    """A running stack with HTTP and AWS helpers for tests."""

    def call(self, method: str, path: str, body=None, token=None, headers=None) -> Reply:
        return http(method, self.base_url + path, body, token, headers)

    def aws_client(self, service: str):
        """A boto3 client for the stack's own AWS endpoint (its moto)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def new_user(self, username: str) -> str:
        reply = self.call("POST", "/admin/users", {"username": username}, token=self.admin_token)
        assert reply.status == 201, reply.body
        return reply.body["token"]


def start_stack(extra_env: dict[str, str] | None = None) -> LocalStack:
    return start(extra_env, LocalStack)
