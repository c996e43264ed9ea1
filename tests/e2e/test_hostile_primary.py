"""A primary whose answers are hostile: deeply nested JSON, rate-limit
headers of thousands of digits. A real HTTP server on loopback; the
adapters must classify every such answer, never raise."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.upstream.generic import GenericIngestUpstream
from chalicelib.upstream.mastodon import MastodonUpstream
from chalicelib.upstream.port import Outcome, UpstreamPost

pytestmark = pytest.mark.e2e

DEEP = b"[" * 100_000
HUGE_NUMBER = "9" * 5_000


class _Hostile(BaseHTTPRequestHandler):
    """201 to every POST and 200 to every GET, with a body and headers from
    the server's `answer` (one verify_credentials answer is an object, so
    the Mastodon adapter goes on to read the statuses list)."""

    def _answer(self, status: int) -> None:
        body, headers = self.server.answer(self.path)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(201)

    def do_GET(self) -> None:
        self._answer(200)

    def log_message(self, *_):
        pass


@pytest.fixture
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.answer = lambda path: (DEEP, {})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def make_post(**changes) -> UpstreamPost:
    fields = {
        "id": "01HZY0000000000000000000AA",
        "author": "alice",
        "text": "hi",
        "created_at": "2024-05-01T10:00:00.000Z",
    }
    return UpstreamPost(**{**fields, **changes})


def test_a_deeply_nested_answer_is_a_2xx_without_an_id(hostile):
    result = GenericIngestUpstream(url_of(hostile), "token").send(make_post())

    assert (result.outcome, result.status, result.upstream_id) == (Outcome.TRANSIENT, 201, None)


def test_rate_limit_headers_of_thousands_of_digits_are_ignored(hostile):
    headers = {"X-RateLimit-Limit": HUGE_NUMBER, "X-RateLimit-Remaining": HUGE_NUMBER, "Retry-After": HUGE_NUMBER}
    hostile.answer = lambda path: (b'{"id": "7"}', headers)

    result = GenericIngestUpstream(url_of(hostile), "token").send(make_post())

    assert (result.outcome, result.upstream_id) == (Outcome.DONE, "7")
    assert result.rate_limit is None  # neither number is readable, and no reset was sent


def test_a_deeply_nested_statuses_list_is_not_a_crash_of_the_resend_search(hostile):
    hostile.answer = lambda path: (b'{"id": "1"}' if "verify_credentials" in path else DEEP, {})
    upstream = MastodonUpstream(url_of(hostile), lambda author: "token")

    result = upstream.send(make_post(previous_attempts=1))

    assert result.outcome is not Outcome.DONE and result.upstream_id is None
