"""A counting reverse proxy in front of a moto server, for scripts/bench_cost.py.

Every request is forwarded as sent (method, path, headers, body) and its
answer passed back; on the way, the proxy records the service (from the SigV4
credential scope), the operation, and for DynamoDB the request and answer
bodies, so that write and read units can be estimated from what went over
the wire.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# Hop-by-hop headers: never passed on (RFC 9110, 7.6.1).
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    status: int
    request: dict | None = None  # DynamoDB's JSON body
    answer: dict | None = None


def service_of(authorization: str | None) -> str:
    match = _SCOPE.search(authorization or "")
    return match.group(1) if match else "unsigned"


def operation_of(service: str, method: str, path: str, target: str | None) -> str:
    """X-Amz-Target's operation for the JSON protocols; for S3, the method and
    whether it names an object ("GET object") or only a bucket ("GET bucket")."""
    if target:
        return target.rsplit(".", 1)[-1]
    if service == "s3":
        parts = urlsplit(path).path.lstrip("/").split("/", 1)
        return f"{method} {'object' if len(parts) == 2 and parts[1] else 'bucket'}"
    return method


def _json_or_none(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class Recording:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def take(self) -> list[Call]:
        """Everything recorded so far, and start afresh."""
        with self.lock:
            taken, self.calls = self.calls, []
        return taken


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CountingProxy

    def log_message(self, *args) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        """The request body as it came, chunk framing included."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = bytearray()
            while True:
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = self.rfile.readline()
                        raw += trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return bytes(raw)
                raw += self.rfile.read(size + 2)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_upstream(self, body: bytes):
        upstream = self.server.upstream_connection()
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _HOP_BY_HOP or name.lower() == "transfer-encoding":
                upstream.putheader(name, value)
        upstream.endheaders(body or None)
        answer = upstream.getresponse()
        return answer, answer.read()

    def _forward(self) -> None:
        body = self._body()
        try:
            answer, answer_body = self._send_upstream(body)
        except (http.client.HTTPException, ConnectionError):
            # moto closed an idle keep-alive connection: once more, on a new one.
            self.server.upstream_connection().close()
            answer, answer_body = self._send_upstream(body)
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        declared = answer.getheader("Content-Length")
        self.send_header("Content-Length", declared if self.command == "HEAD" and declared else str(len(answer_body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer_body)
        self._record(body, answer.status, answer_body)

    def _record(self, body: bytes, status: int, answer_body: bytes) -> None:
        service = service_of(self.headers.get("Authorization"))
        operation = operation_of(service, self.command, self.path, self.headers.get("X-Amz-Target"))
        json_bodies = service == "dynamodb"
        self.server.recording.add(
            Call(
                service,
                operation,
                status,
                _json_or_none(body) if json_bodies else None,
                _json_or_none(answer_body) if json_bodies else None,
            )
        )

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward


class CountingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_url: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        target = urlsplit(upstream_url)
        self.upstream = (target.hostname, target.port)
        self.recording = Recording()
        self._local = threading.local()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def upstream_connection(self) -> http.client.HTTPConnection:
        """One keep-alive connection to moto per proxy thread."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        return connection

    def start(self) -> CountingProxy:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self
