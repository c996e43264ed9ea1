"""The fake primary's HTTP server: the ingest protocol behind its faults, the
change feed for Lifeboat's mirror, the control hooks, and `FakePrimary`, the
server in a background thread."""

from __future__ import annotations

import hmac
import json
import math
import threading
import time
import urllib.parse
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devtools.fake_primary.changes import FeedFault
from devtools.fake_primary.headers import rate_headers, retry_after_value
from devtools.fake_primary.mode import Mode
from devtools.fake_primary.state import (
    DeletedPost,
    Plan,
    PrimaryState,
    ReceivedPost,
    Rejected,
    iso_at,
    validate_payload,
)

DEFAULT_TOKEN = "fake-primary-token"
MAX_BODY_BYTES = 1024 * 1024
DELETE_PREFIX = "/posts/"
CHANGES_PATH = "/lifeboat/changes"


class Handler(BaseHTTPRequestHandler):
    server: PrimaryServer
    server_version = "FakePrimary/1.0"

    def log_message(self, format, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path == CHANGES_PATH:
            self._changes()
            return
        routes = {
            "/health": self._health,
            "/received": lambda: self._json(200, [asdict(post) for post in self.server.state.received()]),
            "/deleted": lambda: self._json(200, [asdict(post) for post in self.server.state.deleted()]),
            "/stats": lambda: self._json(200, self.server.state.stats()),
            "/control": lambda: self._json(200, asdict(self.server.state.mode)),
        }
        routes.get(self.path, self._not_found)()

    def do_POST(self) -> None:
        routes = {
            "/posts": self._ingest,
            "/control": self._control,
            "/control/reset": self._reset,
            "/control/users": lambda: self._controlled(self._add_user),
            "/control/tokens": lambda: self._controlled(self._add_token),
            "/control/follows": lambda: self._controlled(self._add_follow),
            "/control/posts": lambda: self._controlled(self._add_post),
            "/control/changes": lambda: self._controlled(self._add_changes),
            "/control/feed-faults": lambda: self._controlled(self._add_feed_faults),
        }
        routes.get(self.path, self._not_found)()

    def do_DELETE(self) -> None:
        upstream_id = urllib.parse.unquote(self.path.removeprefix(DELETE_PREFIX))
        if not self.path.startswith(DELETE_PREFIX) or not upstream_id or "/" in upstream_id:
            self._not_found()
            return
        self._guarded("delete_requests", lambda plan, headers: self._remove(upstream_id, plan, headers))

    def _not_found(self) -> None:
        self._json(404, {"error": "not found"})

    def _health(self) -> None:
        plan = self.server.state.plan("health_checks", ingest=False)
        if plan.mode.down:
            self._unavailable(plan.mode, {})
        elif self._slow_or_stalled(plan):
            self._json(200, {"status": "ok"})

    def _ingest(self) -> None:
        raw = self._read_body()
        self._guarded("requests", lambda plan, headers: self._store(raw, plan, headers))

    def _guarded(self, counter: str, action) -> None:
        """The faults every ingest request (post or delete) meets, then `action`."""
        state = self.server.state
        plan = state.plan(counter, ingest=True)
        mode = plan.mode
        if mode.down:
            self._unavailable(mode, {})
            return
        if not self._slow_or_stalled(plan):
            return
        headers = rate_headers(plan.rate, mode)
        if plan.rate is not None and plan.rate.limited:
            state.count("rejected_429")
            retry = retry_after_value(max(1, math.ceil(plan.rate.reset_seconds)), mode.retry_after_format)
            self._json(429, {"error": "rate limited"}, {**headers, "Retry-After": retry})
        elif not self._authorised():
            self._json(401, {"error": "bad token"}, headers)
        elif plan.fail:
            state.count("failed_500")
            self._json(500, {"error": "injected failure"}, headers)
        elif mode.force_status is not None:
            self._forced(mode, headers)
        else:
            action(plan, headers)

    def _store(self, raw: bytes | None, plan: Plan, headers: dict[str, str]) -> None:
        state = self.server.state
        try:
            payload = validate_payload(self._parse_json(raw), state.max_chars)
            stored, created = state.accept(payload, self.headers.get("Idempotency-Key"))
        except Rejected as exc:
            self._json(exc.status, {"error": exc.message}, headers)
            return
        if self._lost(plan):
            return
        status = 201 if created else plan.mode.idempotent_status
        self._json(status, stored.answer(), headers)

    def _remove(self, upstream_id: str, plan: Plan, headers: dict[str, str]) -> None:
        deleted = self.server.state.delete(upstream_id)
        if self._lost(plan):
            return
        if deleted:
            self._send(204, b"", headers)
        else:
            self._json(404, {"error": "no such post"}, headers)

    def _lost(self, plan: Plan) -> bool:
        """Done, and the answer never leaves: "reached the primary, answer lost"."""
        if plan.lose:
            self.server.state.count("lost_answers")
            self.close_connection = True
        return plan.lose

    def _forced(self, mode: Mode, headers: dict[str, str]) -> None:
        if mode.retry_after is not None and mode.force_status in (429, 503):
            headers = {**headers, "Retry-After": retry_after_value(mode.retry_after, mode.retry_after_format)}
        body = (mode.force_body if mode.force_body is not None else '{"error": "forced"}').encode("utf-8")
        self._send(mode.force_status, body, headers)

    def _unavailable(self, mode: Mode, headers: dict[str, str]) -> None:
        if mode.retry_after is not None:
            headers = {**headers, "Retry-After": retry_after_value(mode.retry_after, mode.retry_after_format)}
        self._json(503, {"error": "primary is down"}, headers)

    def _slow_or_stalled(self, plan: Plan) -> bool:
        """Apply latency; for a stalled request wait, then hang up without an
        answer and return False. Both waits end early when the server stops."""
        stopping = self.server.state.stopping
        if plan.mode.latency_ms:
            stopping.wait(plan.mode.latency_ms / 1000)
        if not plan.stall:
            return True
        self.server.state.count("timeouts")
        stopping.wait(plan.mode.stall_seconds)
        self.close_connection = True
        return False

    def _control(self) -> None:
        try:
            changes = self._parse_json(self._read_body())
            if not isinstance(changes, dict):
                raise Rejected(400, "body must be a JSON object")
            mode = self.server.state.configure(changes)
        except Rejected as exc:
            self._json(exc.status, {"error": exc.message})
        except ValueError as exc:
            self._json(400, {"error": exc.args[0]})
        else:
            self._json(200, asdict(mode))

    # -- the change feed ---------------------------------------------------------

    def _changes(self) -> None:
        state = self.server.state
        state.count("feed_requests")
        if state.mode.down:
            self._unavailable(state.mode, {})
            return
        if not self._authorised():
            self._json(401, {"error": "bad token"})
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        limit = query.get("limit", ["100"])[0]
        page = state.changes.page(query.get("after", [None])[0], int(limit) if limit.isdigit() else 100)
        fault = state.changes.next_fault()
        if fault is None:
            self._json(200, page)
        elif fault.die_mid_page:
            # Headers promise the whole page; the body stops half-way.
            body = json.dumps(page).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            self._json(fault.status, {"error": "injected feed fault"}, headers)

    def _controlled(self, action) -> None:
        """A control hook with a JSON object body: `action(body)`'s answer, or 400."""
        try:
            body = self._parse_json(self._read_body())
            if not isinstance(body, dict):
                raise Rejected(400, "body must be a JSON object")
            self._json(200, action(body))
        except Rejected as exc:
            self._json(exc.status, {"error": exc.message})
        except (KeyError, TypeError, ValueError) as exc:
            self._json(400, {"error": f"bad control body: {exc!r}"})

    def _add_user(self, body: dict) -> dict:
        changes = self.server.state.changes
        changes.add_user(body["username"], body.get("display_name", body["username"]), body.get("created_at") or
                         iso_at(time.time()), bool(body.get("suspended", False)))  # fmt: skip
        return {"username": body["username"]}

    def _add_token(self, body: dict) -> dict:
        """Only the digest is answered: the feed never carries a token."""
        digest = self.server.state.changes.add_token(
            body["username"], body["token"], body.get("scopes", "read write follow"), bool(body.get("revoked", False))
        )
        return {"token_sha256": digest}

    def _add_follow(self, body: dict) -> dict:
        self.server.state.changes.add_follow(body["follower"], body["followee"], bool(body.get("active", True)))
        return {"follower": body["follower"], "followee": body["followee"]}

    def _add_post(self, body: dict) -> dict:
        upstream_id = self.server.state.add_direct_post(body["author"], body["text"], None, body.get("in_reply_to"))
        return {"id": upstream_id}

    def _add_changes(self, body: dict) -> dict:
        if not isinstance(body.get("changes"), list):
            raise Rejected(400, "changes must be a list")
        self.server.state.changes.append(*body["changes"])
        return {"added": len(body["changes"])}

    def _add_feed_faults(self, body: dict) -> dict:
        faults = [FeedFault(**fault) for fault in body["faults"]]
        self.server.state.changes.add_faults(faults)
        return {"queued": len(faults)}

    def _reset(self) -> None:
        self._read_body()
        self.server.state.reset()
        self._json(200, self.server.state.stats())

    def _authorised(self) -> bool:
        expected = f"Bearer {self.server.state.token}".encode()
        return hmac.compare_digest(self.headers.get("Authorization", "").encode(), expected)

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is absent or too large to read."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY_BYTES:
            return None
        return self.rfile.read(length)

    @staticmethod
    def _parse_json(raw: bytes | None) -> object:
        if raw is None:
            raise Rejected(400, "a JSON body is required")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Rejected(400, "body is not valid JSON") from exc

    def _json(self, status: int, document: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode("utf-8"), headers or {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class PrimaryServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets bursts of concurrent clients,
    # which a real primary would queue.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: PrimaryState, verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.state = state
        self.verbose = verbose


class FakePrimary:
    """The fake primary in a background thread. `start()` returns the base
    URL; every accessor is thread-safe and returns a copy."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        max_chars: int = 500,
        mode: Mode | None = None,
        verbose: bool = False,
    ) -> None:
        self._address = (host, port)
        self._verbose = verbose
        self._state = PrimaryState(token=token, max_chars=max_chars, seed=seed, mode=mode or Mode())
        self._server: PrimaryServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("FakePrimary is already running")
        self._state.stopping.clear()
        self._server = PrimaryServer(self._address, self._state, self._verbose)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-primary", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop listening; stalled handlers wake and hang up."""
        if self._server is None:
            return
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakePrimary:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakePrimary is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def mode(self) -> Mode:
        return self._state.mode

    def configure(self, **changes) -> Mode:
        """Change the mode as `POST /control` does; ValueError on a bad field."""
        return self._state.configure(changes)

    def received(self) -> list[ReceivedPost]:
        return self._state.received()

    def deleted(self) -> list[DeletedPost]:
        return self._state.deleted()

    def add_direct_post(self, author: str, text: str, key: str | None = None, created_at: float | None = None) -> str:
        """As if the author posted on the primary itself (under `key`, at
        `created_at` or now)."""
        return self._state.add_direct_post(author, text, key, created_at=created_at)

    def add_user(
        self, username: str, display_name: str, suspended: bool = False, password_bcrypt: str | None = None
    ) -> None:
        """An account in the change feed, created now (with the bcrypt hash
        of its password on the primary, if it has one)."""
        self._state.changes.add_user(username, display_name, iso_at(time.time()), suspended, password_bcrypt)

    def add_token(self, username: str, token: str, scopes: str, revoked: bool = False) -> str:
        """A credential in the change feed; its SHA-256 digest."""
        return self._state.changes.add_token(username, token, scopes, revoked)

    def add_follow(self, follower: str, followee: str, active: bool = True) -> None:
        self._state.changes.add_follow(follower, followee, active)

    def stats(self) -> dict[str, int]:
        return self._state.stats()

    def reset(self) -> None:
        self._state.reset()
