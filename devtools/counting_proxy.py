"""A counting reverse proxy for an AWS endpoint (moto's server), on loopback.

Every request is forwarded as it came and recorded: when, which service
(the SigV4 credential scope), which operation (X-Amz-Target for the JSON
protocols, Action= for the query protocol, the method and path for S3),
the answer's status, and for DynamoDB both bodies, so that
devtools/cost_model.py can size what was written and read.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers that describe one hop, not the message (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"}
)
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
# Services whose bodies the cost model reads.
BODIES_KEPT = frozenset({"dynamodb", "dynamodbstreams"})


@dataclass(frozen=True)
class Call:
    at: float  # time.monotonic() when the request arrived
    service: str
    operation: str
    status: int
    request: dict | None = None
    response: dict | None = None
    detail: str = ""  # S3: the key's top-level prefix, so archive and feed writes are told apart

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}" + (f" {self.detail}" if self.detail else "")


def service_of(headers) -> str:
    """The signing service, with DynamoDB Streams told apart from DynamoDB
    (both sign as `dynamodb`)."""
    target = headers.get("X-Amz-Target", "")
    if target.startswith("DynamoDBStreams"):
        return "dynamodbstreams"
    scope = _SCOPE.search(headers.get("Authorization", ""))
    return scope.group(1) if scope else "unsigned"


def s3_operation(method: str, path: str, query: str, headers) -> str:
    """The S3 API operation of a path-style request."""
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    parts = [part for part in path.split("/") if part]
    if not parts:
        return "ListBuckets"
    on_object = len(parts) > 1
    if method == "PUT":
        if not on_object:
            return "CreateBucket"
        if "partNumber" in params:
            return "UploadPart"
        return "CopyObject" if "x-amz-copy-source" in {name.lower() for name in headers} else "PutObject"
    if method == "POST":
        if "delete" in params:
            return "DeleteObjects"
        if "uploads" in params:
            return "CreateMultipartUpload"
        return "CompleteMultipartUpload" if "uploadId" in params else "PostObject"
    if method == "DELETE":
        return "DeleteObject" if on_object else "DeleteBucket"
    if method == "HEAD":
        return "HeadObject" if on_object else "HeadBucket"
    if on_object:
        return "GetObject"
    if "list-type" in params:
        return "ListObjectsV2"
    return "ListObjectVersions" if "versions" in params else "ListObjects"


def s3_prefix(path: str) -> str:
    """`archive/` for /bucket/archive/2026/..., the key itself at the top."""
    parts = [part for part in path.split("/") if part]
    if len(parts) < 2:
        return ""
    return parts[1] + "/" if len(parts) > 2 else parts[1]


def operation_of(service: str, method: str, target: str, path: str, query: str, body: bytes, headers) -> str:
    if target:
        return target.rsplit(".", 1)[-1]
    if service == "s3":
        return s3_operation(method, path, query, headers)
    action = urllib.parse.parse_qs(body.decode("latin-1")).get("Action") or urllib.parse.parse_qs(query).get("Action")
    return action[0] if action else f"{method} {path}"


def _json(body: bytes) -> dict | None:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
    server: CountingProxy

    def log_message(self, format, *args):  # quiet: the bench prints its own summary
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _upstream(self) -> http.client.HTTPConnection:
        if getattr(self, "_connection", None) is None:
            self._connection = http.client.HTTPConnection(self.server.target_host, self.server.target_port, timeout=60)
        return self._connection

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive upstream connection may have closed meanwhile
            try:
                connection = self._upstream()
                connection.request(self.command, self.path, body, headers)
                answer = connection.getresponse()
                return answer.status, answer.getheaders(), answer.read()
            except (http.client.HTTPException, ConnectionError):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _handle(self) -> None:
        arrived = time.monotonic()
        body = self._body()
        status, headers, answer = self._forward(body)
        self._reply(status, headers, answer)
        self.server.record(self._call(arrived, body, status, answer))

    def _call(self, arrived: float, body: bytes, status: int, answer: bytes) -> Call:
        service = service_of(self.headers)
        path, _, query = self.path.partition("?")
        target = self.headers.get("X-Amz-Target", "")
        operation = operation_of(service, self.command, target, path, query, body, self.headers)
        if service == "s3":
            return Call(arrived, service, operation, status, detail=s3_prefix(urllib.parse.unquote(path)))
        if service not in BODIES_KEPT:
            return Call(arrived, service, operation, status)
        return Call(arrived, service, operation, status, _json(body), _json(answer))

    def _reply(self, status: int, headers: list[tuple[str, str]], answer: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        length = str(len(answer))
        if self.command == "HEAD":  # no body came, but the length of the one a GET would get
            length = next((value for name, value in headers if name.lower() == "content-length"), "0")
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle


class CountingProxy(ThreadingHTTPServer):
    """Forwards to `target_url` and keeps every Call, in arrival order."""

    daemon_threads = True

    def __init__(self, target_url: str) -> None:
        target = urllib.parse.urlsplit(target_url)
        self.target_host, self.target_port = target.hostname, target.port
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self) -> list[Call]:
        """Every call so far, ordered by arrival."""
        with self._lock:
            return sorted(self._calls, key=lambda call: call.at)

    def start(self) -> CountingProxy:
        threading.Thread(target=self.serve_forever, name="counting-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
