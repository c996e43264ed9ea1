"""A fake primary service on loopback, speaking the generic ingest protocol.

It exists so Recovery can be tested against a real HTTP server that keeps the
protocol's promises (idempotency per author, rate-limit headers) and breaks in
the ways a real primary does (down, slow, 500s, stalls, lost answers).

Use it as a script:

    python scripts/fake_primary.py --port 0 --token t0ken --fail-rate 0.2 --seed 7

which prints `Fake primary: http://127.0.0.1:<port>` once listening and stops
cleanly on SIGTERM or SIGINT; or from tests, as `FakePrimary` (a context
manager). Standard library only.

Endpoints:
- `GET /health`: 200 `{"status": "ok"}`; 503 while down.
- `POST /posts`: the ingest protocol. 201 with the stored post
  (`{"id", "author", "text", "created_at", "in_reply_to"}`, `id` being the
  primary's) for a new post; the same (author, Idempotency-Key) again answers
  `idempotent_status` (200 by default, as Mastodon does; 409 optionally) with
  the post stored under that key, which is never stored twice. 401 bad token,
  400 bad JSON or missing fields, 422 text too long or unknown `in_reply_to`,
  429 over the rate limit.
- `DELETE /posts/{upstream_id}`: 204 when the post was there and is now
  deleted, 404 when there is no such post (any more); 401 bad token.
- `GET /received`: accepted posts in arrival order (deleted ones too).
  `GET /deleted`: deletions in order. `GET /stats`: counters.
- `FakePrimary.add_direct_post(author, text, key)`: a post the author made on
  the primary itself (not through the ingest), under an Idempotency-Key;
  not in `/received`.
- `GET /control`, `POST /control` (partial update of the mode),
  `POST /control/reset` (forget posts and counters). These test hooks have no
  authentication: the server binds to loopback.

Fault order for an ingest request (a post or a delete): down (503), latency,
stall (timeout), rate limit (429), token (401), fail rate (500), forced
status, validation, store (or delete), lost answer. When a rate limit is set, every answer from the rate-limit
step on carries X-RateLimit-Limit/Remaining/Reset.
"""

from __future__ import annotations

import argparse
import email.utils
import hmac
import json
import math
import random
import signal
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_TOKEN = "fake-primary-token"
MAX_BODY_BYTES = 1024 * 1024
REQUIRED_STRINGS = ("id", "author", "text", "created_at")
RETRY_AFTER_FORMATS = ("seconds", "http-date")
RESET_FORMATS = ("delta", "epoch", "iso")
COUNTERS = (
    "requests",
    "accepted",
    "idempotent_hits",
    "duplicates",
    "rejected_429",
    "failed_500",
    "timeouts",
    "lost_answers",
    "health_checks",
    "delete_requests",
    "deleted",
)
DELETE_PREFIX = "/posts/"


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("must be a number in [0, 1]")
    return float(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be an integer >= 0")
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise ValueError("must be a number of seconds in [0, 3600]")
    return float(value)


def _optional(check):
    return lambda value: None if value is None else check(value)


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError("must be an HTTP status in [200, 599]")
    return value


def _one_of(*choices):
    def check(value: object):
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}")
        return value

    return check


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


_CHECKS = {
    "down": _flag,
    "fail_rate": _fraction,
    "latency_ms": _count,
    "rate_limit": _count,
    "timeout_rate": _fraction,
    "lose_answer_rate": _fraction,
    "stall_seconds": _seconds,
    "force_status": _optional(_status),
    "force_body": _optional(_text),
    "retry_after": _optional(_count),
    "retry_after_format": _one_of(*RETRY_AFTER_FORMATS),
    "rate_limit_reset_format": _one_of(*RESET_FORMATS),
    "idempotent_status": _one_of(200, 409),
}


@dataclass(frozen=True)
class Mode:
    """How the fake misbehaves. `rate_limit` is requests per second (0: no
    limit). `retry_after` is sent with 503s (down, forced) and forced 429s;
    rate-limit 429s always say when the window ends. `force_status` answers
    every authorised ingest request that survived the other faults."""

    down: bool = False
    fail_rate: float = 0.0
    latency_ms: int = 0
    rate_limit: int = 0
    timeout_rate: float = 0.0
    lose_answer_rate: float = 0.0
    stall_seconds: float = 10.0
    force_status: int | None = None
    force_body: str | None = None
    retry_after: int | None = None
    retry_after_format: str = "seconds"
    rate_limit_reset_format: str = "delta"
    idempotent_status: int = 200

    def updated(self, changes: dict) -> Mode:
        """A copy with `changes` applied; ValueError names a bad field."""
        unknown = sorted(set(changes) - set(_CHECKS))
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        checked = {}
        for name, value in changes.items():
            try:
                checked[name] = _CHECKS[name](value)
            except ValueError as exc:
                raise ValueError(f"{name} {exc}") from exc
        return replace(self, **checked)


@dataclass(frozen=True)
class ReceivedPost:
    upstream_id: str
    id: str
    author: str
    text: str
    created_at: str
    in_reply_to: str | None
    idempotency_key: str | None
    received_at: str
    # Made by the author on the primary itself, not replayed by Lifeboat.
    direct: bool = False

    def answer(self) -> dict:
        """The post as the ingest answers with it."""
        fields = ("author", "text", "created_at", "in_reply_to")
        return {"id": self.upstream_id, **{name: getattr(self, name) for name in fields}}


@dataclass(frozen=True)
class DeletedPost:
    upstream_id: str
    id: str
    author: str
    deleted_at: str


@dataclass(frozen=True)
class RateWindow:
    limit: int
    remaining: int
    reset_seconds: float
    limited: bool


@dataclass(frozen=True)
class Plan:
    """The dice for one request, rolled together under the lock so a seeded
    run makes the same choices in the same request order."""

    mode: Mode
    stall: bool = False
    fail: bool = False
    lose: bool = False
    rate: RateWindow | None = None


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _iso(epoch_seconds: float) -> str:
    """UTC with milliseconds and a Z, as Mastodon writes dates."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_payload(payload: object, max_chars: int) -> dict:
    """The ingest body, checked: Rejected(400) for a malformed one,
    Rejected(422) for a well-formed one the primary will not take."""
    if not isinstance(payload, dict):
        raise Rejected(400, "body must be a JSON object")
    for name in REQUIRED_STRINGS:
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise Rejected(400, f"{name} must be a non-empty string")
    if "in_reply_to" not in payload or not isinstance(payload["in_reply_to"], str | None):
        raise Rejected(400, "in_reply_to must be present, a string or null")
    if len(payload["text"]) > max_chars:
        raise Rejected(422, f"text is longer than {max_chars} characters")
    return payload


@dataclass
class PrimaryState:
    """Everything the handlers share, behind one lock."""

    token: str = field(repr=False)
    max_chars: int = 500
    seed: int | None = None
    mode: Mode = field(default_factory=Mode)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._clear()

    def _clear(self) -> None:
        self._posts: list[ReceivedPost] = []
        self._deleted: list[DeletedPost] = []
        self._by_key: dict[tuple[str, str], ReceivedPost] = {}
        self._lifeboat_ids: set[str] = set()
        self._upstream_ids: set[str] = set()
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._window_start = 0.0
        self._window_count = 0

    def configure(self, changes: dict) -> Mode:
        with self._lock:
            self.mode = self.mode.updated(changes)
            return self.mode

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def count(self, name: str) -> None:
        with self._lock:
            self._counters[name] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def received(self) -> list[ReceivedPost]:
        with self._lock:
            return [post for post in self._posts if not post.direct]

    def deleted(self) -> list[DeletedPost]:
        with self._lock:
            return list(self._deleted)

    def delete(self, upstream_id: str) -> bool:
        """Delete the post; False when there is no such post (any more)."""
        with self._lock:
            if upstream_id not in self._upstream_ids:
                return False
            post = next(post for post in self._posts if post.upstream_id == upstream_id)
            self._upstream_ids.discard(upstream_id)
            self._deleted.append(DeletedPost(upstream_id, post.id, post.author, _iso(time.time())))
            self._counters["deleted"] += 1
            return True

    def plan(self, counter: str, ingest: bool) -> Plan:
        with self._lock:
            self._counters[counter] += 1
            mode = self.mode
            stall = self._roll(mode.timeout_rate)
            if not ingest:
                return Plan(mode, stall=stall)
            return Plan(
                mode,
                stall=stall,
                fail=self._roll(mode.fail_rate),
                lose=self._roll(mode.lose_answer_rate),
                rate=self._take_rate_slot(mode.rate_limit),
            )

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _take_rate_slot(self, limit: int) -> RateWindow | None:
        """A fixed one-second window: the first `limit` requests in it pass."""
        if limit <= 0:
            return None
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        limited = self._window_count > limit
        return RateWindow(
            limit=limit,
            remaining=max(limit - self._window_count, 0),
            reset_seconds=self._window_start + 1.0 - now,
            limited=limited,
        )

    def accept(self, payload: dict, key: str | None) -> tuple[ReceivedPost, bool]:
        """Store the post unless (author, key) was seen; return the post
        stored under the key and whether it is new. The lookup and the insert
        share the lock, so concurrent requests with one key store exactly one
        post."""
        with self._lock:
            if key is not None and (payload["author"], key) in self._by_key:
                self._counters["idempotent_hits"] += 1
                return self._by_key[(payload["author"], key)], False
            parent = payload["in_reply_to"]
            if parent is not None and parent not in self._upstream_ids:
                raise Rejected(422, "in_reply_to is not a known post")
            if payload["id"] in self._lifeboat_ids:
                self._counters["duplicates"] += 1
            self._counters["accepted"] += 1
            return self._store(payload, key), True

    def add_direct_post(self, author: str, text: str, key: str | None) -> str:
        """A post the author made on the primary itself; its upstream id."""
        payload = {"id": "", "author": author, "text": text, "created_at": _iso(time.time()), "in_reply_to": None}
        with self._lock:
            return self._store(payload, key, direct=True).upstream_id

    def _store(self, payload: dict, key: str | None, direct: bool = False) -> ReceivedPost:
        post = ReceivedPost(
            upstream_id=str(len(self._posts) + 1),
            id=payload["id"],
            author=payload["author"],
            text=payload["text"],
            created_at=payload["created_at"],
            in_reply_to=payload["in_reply_to"],
            idempotency_key=key,
            received_at=_iso(time.time()),
            direct=direct,
        )
        self._posts.append(post)
        if not direct:
            self._lifeboat_ids.add(post.id)
        self._upstream_ids.add(post.upstream_id)
        if key is not None:
            self._by_key[(post.author, key)] = post
        return post


def _retry_after_value(seconds: int, style: str) -> str:
    if style == "http-date":
        return email.utils.formatdate(time.time() + seconds, usegmt=True)
    return str(seconds)


def _reset_value(seconds: float, style: str) -> str:
    if style == "epoch":
        return str(math.ceil(time.time() + seconds))
    if style == "iso":
        return _iso(time.time() + seconds)
    return str(math.ceil(seconds))


def _rate_headers(rate: RateWindow | None, mode: Mode) -> dict[str, str]:
    if rate is None:
        return {}
    return {
        "X-RateLimit-Limit": str(rate.limit),
        "X-RateLimit-Remaining": str(rate.remaining),
        "X-RateLimit-Reset": _reset_value(rate.reset_seconds, mode.rate_limit_reset_format),
    }


class Handler(BaseHTTPRequestHandler):
    server: PrimaryServer
    server_version = "FakePrimary/1.0"

    def log_message(self, format, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
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
        headers = _rate_headers(plan.rate, mode)
        if plan.rate is not None and plan.rate.limited:
            state.count("rejected_429")
            retry = _retry_after_value(max(1, math.ceil(plan.rate.reset_seconds)), mode.retry_after_format)
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
            headers = {**headers, "Retry-After": _retry_after_value(mode.retry_after, mode.retry_after_format)}
        body = (mode.force_body if mode.force_body is not None else '{"error": "forced"}').encode("utf-8")
        self._send(mode.force_status, body, headers)

    def _unavailable(self, mode: Mode, headers: dict[str, str]) -> None:
        if mode.retry_after is not None:
            headers = {**headers, "Retry-After": _retry_after_value(mode.retry_after, mode.retry_after_format)}
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

    def add_direct_post(self, author: str, text: str, key: str | None = None) -> str:
        """As if the author posted on the primary itself (under `key`)."""
        return self._state.add_direct_post(author, text, key)

    def stats(self) -> dict[str, int]:
        return self._state.stats()

    def reset(self) -> None:
        self._state.reset()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A fake primary speaking the generic ingest protocol.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-chars", type=int, default=500)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--down", action="store_true")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--rate-limit", type=int, default=0, help="requests per second; 0 for none")
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--stall-seconds", type=float, default=10.0)
    parser.add_argument("--lose-answer-rate", type=float, default=0.0)
    parser.add_argument("--retry-after", type=int, default=None, help="Retry-After seconds on 503s")
    parser.add_argument("--retry-after-format", choices=RETRY_AFTER_FORMATS, default="seconds")
    parser.add_argument("--rate-limit-reset-format", choices=RESET_FORMATS, default="delta")
    parser.add_argument("--idempotent-status", type=int, choices=(200, 409), default=200)
    return parser.parse_args(argv)


def mode_from_args(args: argparse.Namespace) -> Mode:
    return Mode().updated({name.name: getattr(args, name.name) for name in fields(Mode) if hasattr(args, name.name)})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        mode = mode_from_args(args)
    except ValueError as exc:
        print(f"fake_primary: {exc.args[0]}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    primary = FakePrimary(
        args.token,
        host=args.host,
        port=args.port,
        seed=args.seed,
        max_chars=args.max_chars,
        mode=mode,
        verbose=args.verbose,
    )
    with primary:
        print(f"Fake primary: {primary.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
