"""The web client and the static feeds on the local stack's own origin, as
CloudFront serves them deployed (docs/DESIGN.md, "The web client"):

- `GET /` and every file under `web/` (`/app.css`, `/js/main.js`, ...), from
  the checkout, so an edit shows on reload with no build step;
- `GET /feeds/<key>`, the S3 object `feeds/<key>` of the stack's bucket:
  the copies the maintenance job publishes, which the web client reads when
  the API does not answer.

Everything else goes to the API. Only GET and HEAD are served here: the web
client's files have no other method.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB_ROOT = ROOT / "web"
FEEDS_PREFIX = "/feeds/"
INDEX = "index.html"
TEXT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}
# The page and its scripts come from this origin only, and the address bar,
# which holds an OAuth code on the way back from signing in, is never sent
# on as a Referer. The deployed distribution sends the same headers.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Local files change on every edit: always revalidate (the ETag makes that cheap).
    "Cache-Control": "no-cache",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def site_file(path: str, web_root: Path = WEB_ROOT) -> Path | None:
    """The file under `web_root` that a request path names, or None (then
    the API answers). `/` is the page; nothing outside `web_root` is ever
    named, whatever `..` or `%2e` the path holds (the path is not decoded)."""
    relative = path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or INDEX
    if "\\" in relative or any(part in ("", ".", "..") for part in relative.split("/")):
        return None
    candidate = (web_root / relative).resolve()
    root = web_root.resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def file_answer(file: Path, if_none_match: str | None) -> Answer:
    body = file.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    content_type = TEXT_TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    headers = {**PAGE_HEADERS, "Content-Type": content_type, "ETag": etag}
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Answer(304, headers)
    return Answer(200, headers, body)


def feed_answer(s3, bucket: str, path: str, if_none_match: str | None) -> Answer:
    """The published copy at `feeds/<key>`, with S3's own validators, or a
    JSON 404 while none is published yet."""
    from botocore.exceptions import ClientError

    key = path.split("?", 1)[0].lstrip("/")
    arguments = {"Bucket": bucket, "Key": key, **({"IfNoneMatch": if_none_match} if if_none_match else {})}
    try:
        stored = s3.get_object(**arguments)
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        if status == 304:
            return Answer(304, {"ETag": if_none_match or ""})
        if status in (403, 404):
            return _json_error(404, "not_found", "no feed is published at this path yet")
        return _json_error(503, "unavailable", "the bucket did not answer; retry")
    headers = {
        "Content-Type": stored.get("ContentType", "application/octet-stream"),
        "ETag": stored.get("ETag", ""),
        "Cache-Control": stored.get("CacheControl", "no-cache"),
        "X-Content-Type-Options": "nosniff",
    }
    if stored.get("LastModified"):
        headers["Last-Modified"] = stored["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
    return Answer(200, headers, stored["Body"].read())


def _json_error(status: int, code: str, message: str) -> Answer:
    body = json.dumps({"error": code, "message": message}).encode()
    return Answer(status, {"Content-Type": "application/json"}, body)


def javascript_size(web_root: Path = WEB_ROOT) -> tuple[int, int]:
    """(files, bytes gzipped) of the JavaScript the page ships, each file
    compressed on its own as a server sends it."""
    files = sorted(web_root.rglob("*.js"))
    return len(files), sum(len(gzip.compress(file.read_bytes(), compresslevel=9, mtime=0)) for file in files)


def install(handler_class, s3, bucket: str) -> None:
    """Answer the site's paths in Chalice's local request handler before the
    API sees them; every other request goes on to the API as before."""
    api_handle = handler_class._generic_handle

    def handle(self) -> None:
        answer = None
        if self.path.startswith(FEEDS_PREFIX):
            answer = feed_answer(s3, bucket, self.path, self.headers.get("If-None-Match"))
        else:
            file = site_file(self.path)
            if file is not None:
                answer = file_answer(file, self.headers.get("If-None-Match"))
        if answer is None:
            api_handle(self)
            return
        # A body on a GET is read and dropped, or it would be parsed as the
        # next request on this kept-alive connection.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _send(self, answer)

    handler_class.do_GET = handler_class.do_HEAD = handle


def _send(handler, answer: Answer) -> None:
    handler.send_response(answer.status)
    for name, value in answer.headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(answer.body)))
    handler.end_headers()
    if handler.command != "HEAD" and answer.status != 304:
        handler.wfile.write(answer.body)
