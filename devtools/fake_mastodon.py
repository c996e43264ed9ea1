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

For the mirror (`upstream.mastodon_changes`), as Mastodon 4.3 serves them:
- `GET /api/v2/admin/accounts?origin=&status=active|suspended&max_id=&
  min_id=&limit=` (newest first, at most 200, `Link` next when the page is
  full), for an admin token holding `admin:read:accounts` (`admin_tokens`:
  token -> scopes); 403 for a token without it, 401 for an unknown one;
- `GET /api/v1/timelines/public?local=&max_id=&min_id=&limit=`: public,
  not reblogs, not replies to others, no suspended author (Mastodon's
  PublicFeed), at most 40, `Link` next and prev;
- `GET /api/v1/accounts/:id/following?max_id=&limit=`: Accounts, newest
  follow first, at most 80, paged by Follow id in `Link` (empty for a
  suspended account or one that hides it; its `following_count` stays);
- control: `add_account`, `suspend`, `rename`, `add_status` (visibility,
  reply, reblog, time), `add_follow`, `remove_follow`, `fail_next` (a
  status with Retry-After, or a hang-up half-way through a page; those not
  yet answered in `faults_left()`) and per-endpoint request counts in
  `stats()`.

Use it from tests as `FakeMastodon` (a context manager), or as a script:
`python -m devtools.fake_mastodon --port 0 --user alice=t0ken`. Standard
library only.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import random
import signal
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDEMPOTENCY_SECONDS = 3600
ADMIN_SCOPE = "admin:read:accounts"
# Mastodon's defaults and largest pages (limit_param: twice the default).
ADMIN_LIMIT, STATUSES_LIMIT, ACCOUNTS_LIMIT = (100, 200), (20, 40), (40, 80)
# Every account entity carries these, as Mastodon's do: a page of 200 is
# hundreds of kilobytes, as on a real server.
_ACCOUNT_BULK = {
    "locked": False,
    "bot": False,
    "group": False,
    "note": "<p>" + "An account on the fake Mastodon. " * 8 + "</p>",
    "avatar": "https://fake.example/avatars/original/missing.png",
    "avatar_static": "https://fake.example/avatars/original/missing.png",
    "header": "https://fake.example/headers/original/missing.png",
    "header_static": "https://fake.example/headers/original/missing.png",
    "followers_count": 0,
    "following_count": 0,
    "statuses_count": 0,
    "emojis": [],
    "fields": [],
}


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


@dataclass(frozen=True)
class Account:
    """An account the server knows: local (`domain` None) or remote."""

    id: str
    username: str
    domain: str | None = None
    display_name: str = ""
    created_at: str = ""
    suspended: bool = False
    hides_following: bool = False

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"

    def entity(self, following_count: int = 0) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "acct": self.acct,
            "display_name": self.display_name,
            "created_at": self.created_at,
            "url": f"https://{self.domain or 'fake.example'}/@{self.username}",
            **_ACCOUNT_BULK,
            "following_count": following_count,
        }

    def admin_entity(self, following_count: int = 0) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "domain": self.domain,
            "created_at": self.created_at,
            "email": f"{self.username}@mail.example",
            "ip": "192.0.2.1",
            "ips": [{"ip": "192.0.2.1", "used_at": self.created_at}],
            "role": {"id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": False},
            "confirmed": True,
            "suspended": self.suspended,
            "silenced": False,
            "sensitized": False,
            "disabled": False,
            "approved": True,
            "locale": "en",
            "invite_request": None,
            "account": self.entity(following_count),
        }


@dataclass(frozen=True)
class Status:
    id: str
    author: str
    text: str
    spoiler_text: str
    in_reply_to_id: str | None
    language: str | None
    visibility: str = "public"
    reblog_of: Status | None = None
    created_at: str = ""

    def entity(self, account_id: str, account: Account | None = None) -> dict:
        content = "".join(f"<p>{html.escape(part)}</p>" for part in self.text.split("\n\n"))
        shown = account.entity() if account else {"id": account_id, "username": self.author, "acct": self.author}
        return {
            "id": self.id,
            "created_at": self.created_at,
            "content": "" if self.reblog_of else content.replace("\n", "<br />"),
            "spoiler_text": self.spoiler_text,
            "in_reply_to_id": self.in_reply_to_id,
            "language": self.language,
            "visibility": self.visibility,
            "reblog": self.reblog_of.entity(account_id) if self.reblog_of else None,
            "account": shown,
        }


@dataclass(frozen=True)
class Fault:
    """What the next GET under `path` gets instead of its answer: `status`
    (with `retry_after` when given), or, with `hang_up`, half of its real
    answer and then a closed connection."""

    path: str
    status: int = 503
    retry_after: str | None = None
    hang_up: bool = False


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
            "admin_account_requests": 0,
            "public_timeline_requests": 0,
            "following_requests": 0,
        }
    )
    last_id: int = 0
    admin_tokens: dict[str, set[str]] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    # (follow id, follower's username, followee's acct)
    follows: list[tuple[int, str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    follow_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        # The token holders first, in name order: their ids are 1..n, as before.
        for username in sorted(set(self.tokens.values())):
            self.add_account(username)

    def now(self) -> float:
        return time.time()

    def account_id(self, username: str) -> str:
        return self.accounts[username].id

    def add_account(self, acct: str, display_name: str = "", suspended: bool = False, created_at: float | None = None):
        username, _, domain = acct.partition("@")
        account = Account(
            str(len(self.accounts) + 1),
            username,
            domain or None,
            display_name,
            _iso(self.now() if created_at is None else created_at),
            suspended,
        )
        self.accounts[acct] = account
        return account

    def new_status_id(self, at: float | None) -> str:
        if at is None:
            self.last_id = max(self.last_id + 1, int(self.now() * 1000) << 16)
            return str(self.last_id)
        taken = {status.id for status in self.statuses}
        candidate = int(at * 1000) << 16
        while str(candidate) in taken:
            candidate += 1
        return str(candidate)

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
            status = Status(
                self.new_status_id(None),
                author,
                text,
                fields_.get("spoiler_text") or "",
                parent or None,
                fields_.get("language"),
                created_at=_iso(self.now()),
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

    # The mirror's reads. Each answers (entities, next query, prev query).

    def admin_accounts(self, query: dict[str, str]) -> tuple[list[dict], dict | None, dict | None]:
        wanted_domain = {"local": False, "remote": True}.get(query.get("origin", ""))
        status = query.get("status", "active")
        with self.lock:
            self.counters["admin_account_requests"] += 1
            chosen = [
                account
                for account in self.accounts.values()
                if (wanted_domain is None or (account.domain is not None) == wanted_domain)
                and account.suspended == (status == "suspended")
            ]
        limit = _limit(query, ADMIN_LIMIT)
        page = _paginated(chosen, lambda account: account.id, query, limit)
        later = {"max_id": page[-1].id} if len(page) == limit else None
        with self.lock:
            counts = {account.acct: sum(1 for f in self.follows if f[1] == account.acct) for account in page}
        entities = [account.admin_entity(counts[account.acct]) for account in page]
        return entities, later, {"min_id": page[0].id} if page else None

    def public_timeline(self, query: dict[str, str]) -> tuple[list[dict], dict | None, dict | None]:
        local = query.get("local") in ("true", "1")
        with self.lock:
            self.counters["public_timeline_requests"] += 1
            by_id = {status.id: status for status in self.statuses}
            shown = [status for status in self.statuses if self._in_public_feed(status, by_id, local)]
            page = _paginated(shown, lambda status: status.id, query, _limit(query, STATUSES_LIMIT))
            entities = [status.entity(self.accounts[status.author].id, self.accounts[status.author]) for status in page]
        if not page:
            return [], None, None
        return entities, {"max_id": page[-1].id}, {"min_id": page[0].id}

    def _in_public_feed(self, status: Status, by_id: dict[str, Status], local: bool) -> bool:
        """Mastodon's PublicFeed: public, no reblogs, no replies to others,
        no suspended author; `local`: local authors only."""
        author = self.accounts[status.author]
        parent = by_id.get(status.in_reply_to_id or "")
        reply_to_other = status.in_reply_to_id is not None and (parent is None or parent.author != status.author)
        return (
            status.visibility == "public"
            and status.reblog_of is None
            and not reply_to_other
            and not author.suspended
            and (author.domain is None or not local)
        )

    def following(self, account_id: str, query: dict[str, str]) -> tuple[list[dict], dict | None, dict | None] | None:
        with self.lock:
            self.counters["following_requests"] += 1
            owner = next((account for account in self.accounts.values() if account.id == account_id), None)
            if owner is None:
                return None
            hidden = owner.suspended or owner.hides_following
            mine = [] if hidden else [f for f in self.follows if f[1] == owner.acct]
            limit = _limit(query, ACCOUNTS_LIMIT)
            page = _paginated(mine, lambda follow: str(follow[0]), query, limit)
            entities = [self.accounts[followee].entity() for _, _, followee in page]
        later = {"max_id": str(page[-1][0])} if len(page) == limit else None
        return entities, later, {"since_id": str(page[0][0])} if page else None


def _limit(query: dict[str, str], limits: tuple[int, int]) -> int:
    default, largest = limits
    raw = query.get("limit")
    return default if raw is None else min(abs(int(raw)), largest)


def _paginated(items: list, key, query: dict[str, str], limit: int) -> list:
    """Mastodon's `to_a_paginated_by_id`: newest first; `max_id` and
    `since_id` bound it, and `min_id` takes the oldest above it (still
    answered newest first)."""
    ordered = sorted(items, key=lambda item: int(key(item)), reverse=True)
    if "max_id" in query:
        ordered = [item for item in ordered if int(key(item)) < int(query["max_id"])]
    if "min_id" in query:
        above = [item for item in reversed(ordered) if int(key(item)) > int(query["min_id"])]
        return list(reversed(above[:limit]))
    if "since_id" in query:
        ordered = [item for item in ordered if int(key(item)) > int(query["since_id"])]
    return ordered[:limit]


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeMastodon/4.3.0"
    state: _State

    def log_message(self, format, *args) -> None:
        return

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if self._scripted_fault(path) or self._fault():
            return
        if path in ("/api/v2/admin/accounts", "/api/v1/timelines/public") or path.endswith("/following"):
            self._mirror_read(path, {name: values[-1] for name, values in urllib.parse.parse_qs(query).items()})
            return
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

    def _mirror_read(self, path: str, query: dict[str, str]) -> None:
        if not self._reader(ADMIN_SCOPE if path.startswith("/api/v2/admin/") else None):
            return
        if path == "/api/v2/admin/accounts":
            answer = self.state.admin_accounts(query)
        elif path == "/api/v1/timelines/public":
            answer = self.state.public_timeline(query)
        else:
            answer = self.state.following(path.split("/")[4], query)
        if answer is None:
            self._send(404, {"error": "Record not found"})
            return
        entities, later, earlier = answer
        links = [(later, "next"), (earlier, "prev")]
        kept = {name: value for name, value in query.items() if name not in ("max_id", "min_id", "since_id")}
        link = ", ".join(
            f'<http://{self.headers["Host"]}{path}?{urllib.parse.urlencode({**kept, **bound})}>; rel="{rel}"'
            for bound, rel in links
            if bound is not None
        )
        self._send(200, entities, {"Link": link} if link else {})

    def _reader(self, scope: str | None) -> bool:
        """Whether this request may read: an admin token needs `scope` (403
        without it), a user's token and no token at all read public things
        only, and an unknown token is a 401."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme != "Bearer":
            token = ""
        if token in self.state.admin_tokens:
            scopes = self.state.admin_tokens[token]
            allowed = scope is None or scope in scopes or "admin:read" in scopes
        elif token in self.state.tokens or token == "":
            allowed = scope is None
        else:
            self._send(401, {"error": "The access token is invalid"})
            return False
        if not allowed:
            self._send(403, {"error": "This action is outside the authorized scopes"})
        return allowed

    def _scripted_fault(self, path: str) -> bool:
        """The first fault `fail_next` scripted for this path, if any: answered
        now, or (a hang-up) remembered for `_send`."""
        with self.state.lock:
            fault = next((f for f in self.state.faults if path.startswith(f.path)), None)
            if fault is not None:
                self.state.faults.remove(fault)
        self._hang_up = fault is not None and fault.hang_up
        if fault is None or fault.hang_up:
            return False
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        self._send(fault.status, {"error": "scripted fault"}, headers)
        return True

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

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "_hang_up", False):
            # The server dies half-way through the page.
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
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
        admin_tokens: dict[str, str] | None = None,
    ) -> None:
        """`admin_tokens` maps admin tokens to their scopes (space separated)."""
        self._state = _State(
            dict(tokens),
            max_chars,
            random.Random(seed),
            idempotency_seconds=idempotency_seconds,
            admin_tokens={token: set(scopes.split()) for token, scopes in (admin_tokens or {}).items()},
        )
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

    def add_account(
        self, acct: str, display_name: str = "", suspended: bool = False, created_at: float | None = None
    ) -> str:
        """A local account (`name`) or a remote one (`name@domain`); its id."""
        with self._state.lock:
            if acct in self._state.accounts:
                raise ValueError(f"{acct} exists")
            return self._state.add_account(acct, display_name, suspended, created_at).id

    def suspend(self, acct: str, suspended: bool = True) -> None:
        with self._state.lock:
            self._state.accounts[acct] = replace(self._state.accounts[acct], suspended=suspended)

    def rename(self, acct: str, display_name: str) -> None:
        with self._state.lock:
            self._state.accounts[acct] = replace(self._state.accounts[acct], display_name=display_name)

    def hide_following(self, acct: str) -> None:
        """The account hides whom it follows: others read an empty list."""
        with self._state.lock:
            self._state.accounts[acct] = replace(self._state.accounts[acct], hides_following=True)

    def add_status(
        self,
        author: str,
        text: str,
        visibility: str = "public",
        in_reply_to_id: str | None = None,
        reblog_of: str | None = None,
        created_at: float | None = None,
    ) -> str:
        """A status by `author` (an account's acct), as if posted on the
        server at `created_at` (default now; its id encodes the time, as
        Mastodon's do); a reblog of status `reblog_of`. Its id."""
        with self._state.lock:
            if author not in self._state.accounts:
                raise ValueError(f"no account {author}")
            original = self._state._by_id(reblog_of) if reblog_of else None
            status_id = self._state.new_status_id(created_at)
            at = self._state.now() if created_at is None else created_at
            status = Status(status_id, author, text, "", in_reply_to_id, None, visibility, original, _iso(at))
            self._state.statuses.append(status)
            self._state.statuses.sort(key=lambda status: int(status.id))
            return status_id

    def add_follow(self, follower: str, followee: str) -> None:
        """`follower` (local) follows `followee` (local, or remote: made on first use)."""
        with self._state.lock:
            if followee not in self._state.accounts:
                self._state.add_account(followee)
            self._state.follows.append((next(self._state.follow_ids), follower, followee))

    def remove_follow(self, follower: str, followee: str) -> None:
        with self._state.lock:
            self._state.follows = [f for f in self._state.follows if (f[1], f[2]) != (follower, followee)]

    def fail_next(self, *faults: Fault) -> None:
        """Each fault answers the next GET under its path, once, in order."""
        with self._state.lock:
            self._state.faults.extend(faults)

    def faults_left(self) -> int:
        """Scripted faults not yet answered."""
        with self._state.lock:
            return len(self._state.faults)

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
