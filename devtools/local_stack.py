"""The local stack behind ./scripts/run: everything in one process.

moto's server (in a thread), the table and bucket, Chalice's local API
server, a scheduler thread that drives the scheduled job(s) every
SCHEDULE_SECONDS, because `chalice local` runs no schedules, and a stream
thread that reads the table's stream from moto every STREAM_POLL_SECONDS
and hands each batch to the app's stream handler, as Lambda's event source
mapping does on AWS (devtools/streams.py). One process means Ctrl-C or a
SIGTERM stops all of it, with nothing left behind.

Stopping never waits for a job. A job's threads (the replay's worker pool
among them) cannot be interrupted, and Python joins them before it exits,
so a stop used to last as long as the slowest send to a slow primary. The
process ends with `os._exit` instead, at most STOP_GRACE_SECONDS after the
signal. That is safe because every job step is a conditional write that is
repeated by the next run: a post claimed for sending stays claimed, and the
next run sends it again with the same Idempotency-Key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from devtools import local_site
from devtools.localaws import start_moto_server

ROOT = Path(__file__).resolve().parent.parent
STAGE = "local"
READY_TIMEOUT_SECONDS = 30  # READY_TIMEOUT_SECONDS in the environment wins
# How long "Ready" waits for the mirror's first pass over a seeded primary
# (a scheduled run comes every SCHEDULE_SECONDS, 5 locally).
MIRROR_WAIT_SECONDS = 30
STOP_GRACE_SECONDS = 3
SIGNAL_CHECK_SECONDS = 0.5
# SIGALRM's default action ends the process if even the hard stop hangs.
KERNEL_BACKSTOP_SECONDS = 2
API_LISTEN_BACKLOG = 128
DEFAULT_SCHEDULE_SECONDS = 5  # SCHEDULE_SECONDS in the environment wins


def stage_environment(stage: str) -> dict[str, str]:
    """The stage's settings from .chalice/config.json (global, then stage)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def apply_settings(env: dict[str, str]) -> None:
    """Stage defaults, with anything already in the environment winning
    (so `MAX_POST_CHARS=280 ./scripts/run` works)."""
    for name, value in stage_environment(STAGE).items():
        env.setdefault(name, value)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # moto logs every AWS call it serves; the API access log is what matters.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def start_moto(env: dict[str, str]):
    """An embedded moto server, unless AWS_ENDPOINT_URL names one already."""
    if env.get("AWS_ENDPOINT_URL"):
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        return None
    server, url = start_moto_server()
    # Our own moto: make sure no real credentials or profile are ever used.
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    env["AWS_ACCESS_KEY_ID"] = "testing"
    env["AWS_SECRET_ACCESS_KEY"] = "testing"
    env["AWS_ENDPOINT_URL"] = url
    return server


def start_fake_primary(env: dict[str, str]):
    """A fake primary on FAKE_PRIMARY_PORT (8001), unless UPSTREAM_URL names
    a real one: so the whole outage-and-recovery story plays locally."""
    if env.get("UPSTREAM_URL"):
        return None
    from devtools.fake_primary import FakePrimary

    token = env.setdefault("UPSTREAM_TOKEN", secrets.token_urlsafe(24))
    primary = FakePrimary(token, port=int(env.get("FAKE_PRIMARY_PORT", "8001")))
    env["UPSTREAM_URL"] = primary.start()
    # The web client's "the main service is back" links here.
    env.setdefault("PRIMARY_PUBLIC_URL", env["UPSTREAM_URL"])
    return primary


def seed_fake_primary(env: dict[str, str], primary):
    """Users, tokens, follows and posts on our own fake primary, mirrored
    from the first run (SEED_PRIMARY=false for an empty one); the user whose
    token the walkthrough posts with, or None."""
    if primary is None or env.get("SEED_PRIMARY", "true").lower() in ("false", "0", "no"):
        return None
    from devtools.fake_primary.seed import seed

    env.setdefault("MIRROR_ENABLED", "true")
    return seed(primary)


def create_resources() -> None:
    from chalicelib import wiring
    from chalicelib.aws import schema
    from chalicelib.upstream import tokens as upstream_tokens

    settings = wiring.settings()
    schema.ensure_resources(wiring.dynamodb(), wiring.s3(), settings.table_name, settings.bucket_name)
    upstream_tokens.ensure_key(wiring.kms(), wiring.upstream_settings().token_key_id)


def local_context(seconds: int):
    """A stand-in for the Lambda context: the job reads its deadline here."""
    deadline = time.monotonic() + seconds
    return SimpleNamespace(
        get_remaining_time_in_millis=lambda: max(0, int((deadline - time.monotonic()) * 1000)),
        function_name="lifeboat-local-maintenance",
        aws_request_id=secrets.token_hex(8),
    )


def scheduled_event() -> dict:
    """The EventBridge event a schedule delivers on AWS."""
    return {
        "version": "0",
        "id": secrets.token_hex(8),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "resources": ["arn:aws:events:local:123456789012:rule/lifeboat-local-maintenance"],
        "detail": {},
    }


def start_stream_reader(app_module, env: dict[str, str], stop: threading.Event) -> None:
    """Read the table's stream and call the app's handler with each batch."""
    from chalicelib import wiring
    from devtools.streams import DEFAULT_POLL_SECONDS, PollingThread, StreamPoller, stream_arn, streams_client

    arn = stream_arn(wiring.dynamodb(), wiring.settings().table_name)
    poller = StreamPoller(streams_client(), arn, lambda event: app_module.stream_changes(event, local_context(60)))
    PollingThread(poller, float(env.get("STREAM_POLL_SECONDS", DEFAULT_POLL_SECONDS)), stop).start()


class Scheduler(threading.Thread):
    """Runs the app's scheduled handlers every `interval` seconds."""

    def __init__(self, app_module, interval: float, stop: threading.Event) -> None:
        super().__init__(name="scheduler", daemon=True)
        self._app = app_module
        self._interval = interval
        self._stop = stop

    def run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._app.maintenance(scheduled_event(), local_context(60))
            except Exception as exc:  # keep scheduling; the job logged it
                print(f"scheduled job failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def wait_until_ready(base_url: str, stop: threading.Event, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with urllib.request.urlopen(f"{base_url}/status", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            stop.wait(0.1)
    return False


def wait_for_first_mirror(base_url: str, stop: threading.Event, timeout: float) -> bool:
    """Whether the mirror reached the primary's change feed's end once
    (`/status` names when) within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, ValueError),
            urllib.request.urlopen(f"{base_url}/status", timeout=2) as response,
        ):
            if (json.load(response).get("mirror") or {}).get("cursor_at"):
                return True
        stop.wait(0.2)
    return False


class StartFailed(Exception):
    """The stack did not come up; the message says why, for the operator."""


def end_process(code: int) -> None:
    """Exit now, without joining the job's threads (see the module docstring)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


class HardStop:
    """Ends the process `grace` seconds after it is armed, whatever the main
    thread is stuck in (a request to an AWS endpoint that does not answer)."""

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._timer: threading.Timer | None = None

    def arm(self, code: int) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self._grace, end_process, (code,))
            self._timer.daemon = True
            self._timer.start()


def serve_api(env: dict[str, str], host: str, port: int, parts: contextlib.ExitStack):
    """Chalice's local server for app.py on a thread; returns (app module, base URL)."""
    from chalice.cli.factory import CLIFactory
    from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer, create_local_server

    from devtools.local_gateway import install_api_gateway_routing

    # The local server routes only the methods Chalice knows: any other one got
    # the server's own 501 instead of the app's 405 with Allow.
    for method in ("TRACE", "QUERY"):
        setattr(ChaliceRequestHandler, f"do_{method}", ChaliceRequestHandler._generic_handle)
    # socketserver listens with a backlog of 5: a burst of 20 clients saw
    # connections reset. API Gateway queues far more; so does this now.
    ThreadedHTTPServer.request_queue_size = API_LISTEN_BACKLOG
    # API Gateway sends unknown paths to the greedy catch-all route; so does this.
    install_api_gateway_routing()

    import app as app_module
    from chalicelib import wiring

    # The web client and the static feeds on the API's origin, as CloudFront serves them.
    local_site.install(ChaliceRequestHandler, wiring.s3(), wiring.settings().bucket_name)

    config = CLIFactory(str(ROOT), environ=env).create_config_obj(chalice_stage_name=STAGE)
    try:
        server = create_local_server(app_module.app, config, host, port)
    except OSError as exc:
        raise StartFailed(f"The API cannot listen on {host}:{port}: {exc.strerror}.") from exc
    parts.callback(server.server.server_close)
    threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
    parts.callback(server.shutdown)
    return app_module, f"http://{host}:{server.server.server_port}"


def start(env: dict[str, str], stop: threading.Event, parts: contextlib.ExitStack) -> None:
    """Start every part, registering how to stop it in `parts`; raise
    StartFailed if the API does not answer. A signal meanwhile ends the
    start early (and quietly)."""
    host, port = env.get("HOST", "127.0.0.1"), int(env.get("PORT", "8000"))
    # Feed links point here unless the environment names another public URL.
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    generated_token = not env.get("ADMIN_TOKEN")
    if generated_token:
        env["ADMIN_TOKEN"] = secrets.token_urlsafe(32)
    moto = start_moto(env)
    if moto is not None:
        parts.callback(moto.stop)
    primary = start_fake_primary(env)
    if primary is not None:
        parts.callback(primary.stop)
    seeded = seed_fake_primary(env, primary)
    if stop.is_set():
        return
    create_resources()
    app_module, base_url = serve_api(env, host, port, parts)
    start_stream_reader(app_module, env, stop)
    Scheduler(app_module, float(env.get("SCHEDULE_SECONDS", DEFAULT_SCHEDULE_SECONDS)), stop).start()

    if not wait_until_ready(base_url, stop, float(env.get("READY_TIMEOUT_SECONDS", READY_TIMEOUT_SECONDS))):
        if stop.is_set():
            return
        raise StartFailed("The API did not answer in time.")
    # The seeded primary's tokens and passwords work here once the mirror
    # has run: "Ready" waits for its first pass, so the token it prints works.
    if seeded is not None and not wait_for_first_mirror(base_url, stop, MIRROR_WAIT_SECONDS):
        if stop.is_set():
            return
        print("The mirror has not run yet: the seeded tokens work once it has (see /status).", flush=True)
    print(f"Lifeboat local stack (stage {STAGE}); AWS endpoint {env['AWS_ENDPOINT_URL']}", flush=True)
    source = "generated" if generated_token else "from ADMIN_TOKEN"
    print(f"Admin token ({source}): {env['ADMIN_TOKEN']}", flush=True)
    if primary is not None:
        print(f"Fake primary: {primary.url} (POST /control to break it, GET /received)", flush=True)
        if seeded is not None:
            print(f"Primary token of {seeded.username} ({seeded.scopes}): {seeded.token}", flush=True)
            print(f"Primary password of the seeded users ({', '.join(seeded.everyone)}): {seeded.password}", flush=True)
    else:
        print(f"Primary: {env['UPSTREAM_URL']}", flush=True)
    files, gzipped = local_site.javascript_size()
    print(f"Web client: {base_url}/ ({files} JavaScript files, {gzipped / 1024:.1f} KB gzipped)", flush=True)
    print(f"Ready: {base_url}", flush=True)


def main() -> int:
    """Run until a signal (0), or until the start fails (1). Either way the
    caller ends the process (end_process), so it stops within
    STOP_GRACE_SECONDS whatever a job is doing."""
    env = os.environ
    apply_settings(env)
    stop = threading.Event()
    hard_stop = HardStop(STOP_GRACE_SECONDS)

    def on_signal(*_) -> None:
        # The hard stop first: stop.set() takes the Event's lock, and nothing
        # may stand between a signal and the end of the process. The kernel's
        # alarm is the backstop should no Python thread get to run at all.
        hard_stop.arm(0)
        signal.alarm(STOP_GRACE_SECONDS + KERNEL_BACKSTOP_SECONDS)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    parts = contextlib.ExitStack()
    code = 0
    try:
        start(env, stop, parts)
        # In slices: a signal that lands on another thread only flags the
        # main thread, which must wake up to run the handler; a wait with no
        # timeout never did, and the stack ignored SIGTERM.
        while not stop.wait(SIGNAL_CHECK_SECONDS):
            pass
    except StartFailed as exc:
        print(exc, file=sys.stderr, flush=True)
        code = 1
    except Exception:
        traceback.print_exc()
        print("The local stack did not start.", file=sys.stderr, flush=True)
        code = 1
    print("Stopping...", flush=True)
    hard_stop.arm(code)
    try:
        parts.close()
    except Exception:
        traceback.print_exc()
    return code


if __name__ == "__main__":
    end_process(main())
