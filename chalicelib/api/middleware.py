"""The HTTP middleware, around every request: correlation id, the body size
limit, Chalice's own errors rewritten into our shape, the CORS headers of
the path (on errors too), one access-log line, and the metrics flush."""

from __future__ import annotations

import re
import time

from chalice import Response

from chalicelib import errors, wiring
from chalicelib.api.cors import with_cross_origin_headers
from chalicelib.api.fallback import is_mastodon_path, render_error_for, requested_path
from chalicelib.api.requests import raw_body
from chalicelib.api.responses import JSON
from chalicelib.core import parsing
from chalicelib.observability import flush_metrics, logger, traced


def middleware(event, get_response):
    """Per request: correlation id, body size limit, error-shape
    normalisation, one access-log line, and the metrics flush."""
    started = time.perf_counter()
    logger.set_correlation_id((event.context or {}).get("requestId"))
    with traced(f"## {event.method} {event.path}", method=event.method):
        refused = _refused_body(event)
        response = render_error_for(requested_path(event))(refused) if refused else get_response(event)
    path = requested_path(event)
    response = with_cross_origin_headers(_in_our_error_shape(response, is_mastodon_path(path)), path)
    logger.info(
        "request",
        extra={
            "method": event.method,
            "path": event.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    flush_metrics()
    return response


def _refused_body(request) -> errors.LifeboatError | None:
    """Why no view may read this body, or None: over the size limit (413),
    or not bytes at all (400). The body's own length decides: Content-Length
    is the client's claim, though a claim over the limit refuses early,
    before the body is decoded."""
    limit = wiring.settings().max_body_bytes
    too_large = errors.PayloadTooLarge(f"the request body exceeds {limit} bytes", code="body_too_large")
    declared = parsing.ascii_integer(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        return too_large
    try:
        size = len(raw_body(request))
    except errors.BadRequest as not_bytes:
        return not_bytes
    return too_large if size > limit else None


def _in_our_error_shape(response: Response, mastodon: bool) -> Response:
    """Rewrite Chalice's own errors ({"Code", "Message"}: unlisted content
    type, unknown method, unhandled exception) into {"error", "message"},
    or Mastodon's {"error": "<text>"} under /api/."""
    body = response.body
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return response
    if response.status_code >= 500:
        # Never pass a 5xx's text on: it could describe our internals.
        code, message = "internal_error", "an internal error occurred"
    else:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", re.sub(r"Error$", "", body["Code"])).lower()
        message = body["Message"]
    headers = {**response.headers, "Content-Type": JSON}
    body = {"error": message} if mastodon else {"error": code, "message": message}
    return Response(body=body, status_code=response.status_code, headers=headers)
