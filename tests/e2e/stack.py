"""Start ./scripts/run as a real subprocess on a free port, and talk HTTP to it."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@dataclass
class LocalStack:
    process: subprocess.Popen
    base_url: str
    admin_token: str
    aws_endpoint: str
    primary_url: str
    output: list[str] = field(default_factory=list)

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

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def launch(extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """./scripts/run on a free port, in its own process group, output piped."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "FAKE_PRIMARY_PORT": "0", "SCHEDULE_SECONDS": "1", **(extra_env or {})}
    # Our own variables win over whatever the caller's shell had.
    for name in ("AWS_ENDPOINT_URL", "UPSTREAM_URL", "UPSTREAM_TOKEN"):
        if name not in (extra_env or {}):
            env.pop(name, None)
    return subprocess.Popen(
        [str(ROOT / "scripts" / "run")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def process_group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def start_stack(extra_env: dict[str, str] | None = None) -> LocalStack:
    process = launch(extra_env)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump():
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    found: dict[str, str] = {}
    deadline = time.monotonic() + READY_TIMEOUT
    while "ready" not in found:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            process.kill()
            raise RuntimeError("local stack did not start:\n" + "".join(output))
        try:
            line = lines.get(timeout=min(remaining, 1))
        except queue.Empty:
            continue
        for name, pattern in (
            ("ready", r"^Ready: (\S+)"),
            ("admin", r"^Admin token \([^)]*\): (\S+)"),
            ("aws", r"AWS endpoint (\S+)"),
            ("primary", r"^(?:Fake primary|Primary): (\S+)"),
        ):
            match = re.search(pattern, line)
            if match:
                found[name] = match.group(1)
    return LocalStack(process, found["ready"], found["admin"], found["aws"], found["primary"], output)


def wait_for(condition, timeout: float = 20, interval: float = 0.2):
    """Poll `condition` until it returns something truthy, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
