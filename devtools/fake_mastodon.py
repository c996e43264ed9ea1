"""A fake Mastodon server on loopback, for replaying Lifeboat posts into it.

It keeps the promises the Mastodon upstream adapter relies on, and breaks
the way a real server does:
- per-user access tokens (`tokens`: token -> username); 401 otherwise;
- `Idempotency-Key` honoured per token for `idempotency_seconds` (3600, as
  Mastodon; tests set 0 to play "the window has passed");
- `GET /api/v1/instance`, `GET /api/v1/accounts/verify_credentials`,
  `GET /api/v1/accounts/:id/statuses?limit=`, `POST /api/v1/statuses` (JSON
  or form); 404 for an unknown `in_reply_to_id`, 422 for a text over
  `max_chars`;
- `DELETE /api/v1/statuses/:id` as its author: 200 with the status and its
  source `text`, 404 for no such status (any more), 403 for another's;
- faults: `down` (503 everywhere), `fail_rate` (500 before storing),
  `lose_answer_rate` (store, then hang up without answering);
- `post_directly(author, text, key)`: a status the author made on the
  server itself, under an Idempotency-Key.

Use it from tests as `FakeMastodon` (a context manager), or as a script:
`python -m devtools.fake_mastodon --port 0 --user alice=t0ken`. Standard
library only.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import signal
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDEMPOTENCY_SECONDS = 3600


@dataclass(frozen=True)
class Status:
    id: str
    author: str
    text: str
    spoiler_text: str
    in_reply_to_id: str | None
    language: str | None

    def entity(self, account_id: str) -> dict:
        content = "".join(f"<p>{html.escape(part)}</p>" for part in self.text.split("\n\n"))
        return {
            "id": self.id,
            "content": content.replace("\n", "<br />"),
            "spoiler_text": self.spoiler_text,
            "in_reply_to_id": self.in_reply_to_id,
            "language": self.language,
            "visibility": "public",
            "account": {"id": account_id, "username": self.author, "acct": self.author},
        }


@dataclass
class _State:
    tokens: dict[str, str]
    max_chars: int
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: list[Status] = field(default_factory=list)
    deleted: list[Status] = field(default_factory=list)
    keys: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    idempotency_seconds: float = IDEMPOTENCY_SECONDS
    down: bool = False
    fail_rate: float = 0.0
    lose_answer_rate: float = 0.0
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "created": 0,
            "idempotent_hits": 0,
            "lost_answers": 0,
            "searches": 0,
            "delete_requests": 0,
            "deleted": 0,
        }
    )
    last_id: int = 0

    def now(self) -> float:
        return time.time()

    def account_id(self, username: str) -> str:
        return str(sorted(set(self.tokens.values())).index(username) + 1)

    def create(self, author: str, token: str, fields_: dict, key: str | None) -> tuple[int, dict]:
        with self.lock:
            if key is not None:
                earlier = self.keys.get((token, key))
                if earlier and self.now() - earlier[1] < self.idempotency_seconds:
                    self.counters["idempotent_hits"] += 1
                    return 200, self._by_id(earlier[0]).entity(self.account_id(author))
            text = fields_.get("status") or ""
            if not text.strip():
                return 422, {"error": "Validation failed: Text can't be blank"}
            if len(text) > self.max_chars:
                return 422, {"error": f"Validation failed: Text character limit of {self.max_chars} exceeded"}
            parent = fields_.get("in_reply_to_id")
            if parent and self._by_id(parent) is None:
                return 404, {"error": "The post you are trying to reply to does not appear to exist."}
            self.last_id = max(self.last_id + 1, int(self.now() * 1000) << 16)
            status = Status(
                str(self.last_id),
                author,
                text,
                fields_.get("spoiler_text") or "",
                parent or None,
                fields_.get("language"),
            )
            self.statuses.append(status)
            self.counters["created"] += 1
            if key is not None:
                self.keys[(token, key)] = (status.id, self.now())
            return 200, status.entity(self.account_id(author))

    def delete(self, author: str, status_id: str) -> tuple[int, dict]:
        with self.lock:
            self.counters["delete_requests"] += 1
            status = self._by_id(status_id)
            if status is None:
                return 404, {"error": "Record not found"}
            if status.author != author:
                return 403, {"error": "This action is not allowed"}
            self.statuses.remove(status)
            self.deleted.append(status)
            self.counters["deleted"] += 1
            return 200, {**status.entity(self.account_id(author)), "text": status.text}

    def _by_id(self, status_id: str) -> Status | None:
        return next((status for status in self.statuses if status.id == status_id), None)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeMastodon/4.3.0"
    state: _State

    def log_message(self, format, *args) -> None:
        return

    def do_GET(self) -> None:
        if self._fault():
            return
        path, _, query = self.path.partition("?")
        if path.rstrip("/") == "/api/v1/instance":
            self._send(200, {"uri": "fake.example", "title": "Fake Mastodon", "version": "4.3.0"})
            return
        author = self._author()
        if author is None:
            return
        if path == "/api/v1/accounts/verify_credentials":
            self._send(200, {"id": self.state.account_id(author), "username": author, "acct": author})
        elif path.startswith("/api/v1/accounts/") and path.endswith("/statuses"):
            self._list(path.split("/")[4], urllib.parse.parse_qs(query))
        else:
            self._send(404, {"error": "Record not found"})

    def do_POST(self) -> None:
        if self._fault():
            return
        author = self._author()
        if author is None:
            return
        if self.path != "/api/v1/statuses":
            self._send(404, {"error": "Record not found"})
            return
        token = self.headers["Authorization"].split(" ", 1)[1]
        fields_ = self._fields()
        self._faulty(lambda: self.state.create(author, token, fields_, self.headers.get("Idempotency-Key")))

    def do_DELETE(self) -> None:
        if self._fault():
            return
        author = self._author()
        if author is None:
            return
        prefix = "/api/v1/statuses/"
        status_id = self.path.removeprefix(prefix)
        if not self.path.startswith(prefix) or not status_id.isdigit():
            self._send(404, {"error": "Record not found"})
            return
        self._faulty(lambda: self.state.delete(author, status_id))

    def _faulty(self, action) -> None:
        """`action` under the fail and lost-answer rates: a 500 before it
        runs, or a hang-up after it succeeded."""
        with self.state.lock:
            failing = self.state.rng.random() < self.state.fail_rate
            losing = self.state.rng.random() < self.state.lose_answer_rate
        if failing:
            self._send(500, {"error": "We're sorry, but something went wrong on our end."})
            return
        status, body = action()
        if losing and status == 200:
            with self.state.lock:
                self.state.counters["lost_answers"] += 1
            self.close_connection = True
            self.connection.close()
            return
        self._send(status, body)

    def _list(self, account_id: str, query: dict) -> None:
        limit = min(int(query.get("limit", ["20"])[0]), 40)
        with self.state.lock:
            self.state.counters["searches"] += 1
            owners = {username: self.state.account_id(username) for username in set(self.state.tokens.values())}
            mine = [s for s in self.state.statuses if owners.get(s.author) == account_id]
            page = [status.entity(account_id) for status in reversed(mine)][:limit]
        self._send(200, page)

    def _fault(self) -> bool:
        if self.state.down:
            self._send(503, {"error": "Service Unavailable"})
        return self.state.down

    def _author(self) -> str | None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        author = self.state.tokens.get(token) if scheme == "Bearer" else None
        if author is None:
            self._send(401, {"error": "The access token is invalid"})
        return author

    def _fields(self) -> dict:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {name: values[-1] for name, values in urllib.parse.parse_qs(raw).items()}

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeMastodon:
    """The server in a thread. `tokens` maps access tokens to usernames."""

    def __init__(
        self,
        tokens: dict[str, str],
        port: int = 0,
        seed: int | None = None,
        max_chars: int = 500,
        idempotency_seconds: float = IDEMPOTENCY_SECONDS,
    ) -> None:
        self._state = _State(dict(tokens), max_chars, random.Random(seed), idempotency_seconds=idempotency_seconds)
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-mastodon", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeMastodon:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def configure(
        self, down: bool | None = None, fail_rate: float | None = None, lose_answer_rate: float | None = None
    ):
        with self._state.lock:
            if down is not None:
                self._state.down = down
            if fail_rate is not None:
                self._state.fail_rate = fail_rate
            if lose_answer_rate is not None:
                self._state.lose_answer_rate = lose_answer_rate

    def statuses(self) -> list[Status]:
        with self._state.lock:
            return list(self._state.statuses)

    def deleted(self) -> list[Status]:
        with self._state.lock:
            return list(self._state.deleted)

    def post_directly(self, author: str, text: str, key: str | None = None) -> str:
        """As if `author` posted `text` with their client (under `key`); the status id."""
        token = next(token for token, name in self._state.tokens.items() if name == author)
        status, body = self._state.create(author, token, {"status": text}, key)
        if status != 200:
            raise ValueError(body["error"])
        return body["id"]

    def stats(self) -> dict[str, int]:
        with self._state.lock:
            return dict(self._state.counters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake Mastodon server for the upstream adapter.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", action="append", default=[], help="username=token, once per user")
    args = parser.parse_args(argv)
    tokens = {token: name for name, _, token in (entry.partition("=") for entry in args.user)}
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with FakeMastodon(tokens, port=args.port) as server:
        print(f"Fake Mastodon: {server.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
