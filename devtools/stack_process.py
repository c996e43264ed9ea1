"""./scripts/run as a child process on free ports, for the end-to-end tests
and scripts/bench_local.py: start it, wait for its "Ready" line, stop it."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60
# Lines ./scripts/run prints once it is up, and the value each one carries.
ANNOUNCEMENTS = (
    ("ready", r"^Ready: (\S+)"),
    ("admin", r"^Admin token \([^)]*\): (\S+)"),
    ("aws", r"AWS endpoint (\S+)"),
    ("primary", r"^(?:Fake primary|Primary): (\S+)"),
    ("primary_token", r"^Primary token of \S+ \([^)]*\): (\S+)"),
    ("primary_password", r"^Primary password of the seeded users \([^)]*\): (\S+)"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """./scripts/run on a free port, in its own process group, output piped."""
    # Tests and benchmarks bring their own data: no seeded primary unless asked.
    env = {
        **os.environ,
        "PORT": str(free_port()),
        "FAKE_PRIMARY_PORT": "0",
        "SCHEDULE_SECONDS": "1",
        "SEED_PRIMARY": "false",
    }
    # Our own variables win over whatever the caller's shell had.
    for name in ("AWS_ENDPOINT_URL", "UPSTREAM_URL", "UPSTREAM_TOKEN"):
        env.pop(name, None)
    return subprocess.Popen(
        [str(ROOT / "scripts" / "run")],
        cwd=ROOT,
        env={**env, **(extra_env or {})},
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


@dataclass
class RunningStack:
    process: subprocess.Popen
    base_url: str
    admin_token: str
    aws_endpoint: str
    primary_url: str
    output: list[str] = field(default_factory=list)
    # The seeded walkthrough user's primary token (SEED_PRIMARY=true only).
    primary_token: str | None = None
    primary_password: str | None = None

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


Stack = TypeVar("Stack", bound=RunningStack)


def start(extra_env: dict[str, str] | None = None, kind: type[Stack] = RunningStack) -> Stack:
    """Launch the stack and wait for its announcements; RuntimeError with
    its output if it exits or stays silent for READY_TIMEOUT seconds."""
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
            os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError("local stack did not start:\n" + "".join(output))
        try:
            line = lines.get(timeout=min(remaining, 1))
        except queue.Empty:
            continue
        for name, pattern in ANNOUNCEMENTS:
            match = re.search(pattern, line)
            if match:
                found[name] = match.group(1)
    urls = (found["ready"], found["admin"], found["aws"], found["primary"])
    return kind(process, *urls, output, found.get("primary_token"), found.get("primary_password"))


def wait_for(condition, timeout: float = 20, interval: float = 0.2):
    """Poll `condition` until it returns something truthy, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
