"""The HTTP edge: the one place where errors become status codes and JSON
bodies, request parsing shared by the views, and the request middleware."""

from __future__ import annotations

import functools
import json
import re
import time

from chalice import Response

from chalicelib import errors, wiring
from chalicelib.observability import flush_metrics, logger

JSON = "application/json"

_STATUS_BY_ERROR = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}
STORE_RETRY_AFTER_SECONDS = 5


def error_response(error: errors.LifeboatError) -> Response:
    status = next(code for cls, code in _STATUS_BY_ERROR.items() if isinstance(error, cls))
    headers = {"Content-Type": JSON}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="lifeboat"'
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(body={"error": error.code, "message": error.message}, status_code=status, headers=headers)


def _as_domain_error(exc: Exception) -> errors.LifeboatError:
    if isinstance(exc, errors.StoreUnavailable):
        # Reads and admin writes have no spool: tell the client when to retry.
        return errors.Unavailable(
            "storage is temporarily unavailable", retry_after=STORE_RETRY_AFTER_SECONDS, code="unavailable"
        )
    return exc


def router(app):
    """`app.route`, with domain errors turned into JSON error responses."""

    def route(path: str, **options):
        def register(view):
            @functools.wraps(view)
            def guarded(*args, **kwargs):
                try:
                    return view(*args, **kwargs)
                except (errors.LifeboatError, errors.StoreUnavailable) as exc:
                    domain_error = _as_domain_error(exc)
                    if isinstance(exc, errors.StoreUnavailable):
                        logger.warning("store unavailable", extra={"reason": str(exc)})
                    return error_response(domain_error)

            return app.route(path, **options)(guarded)

        return register

    return route


def json_body(request) -> object:
    """The request body parsed as JSON, or BadRequest.

    Chalice's own parser answers in its {"Code", "Message"} shape; parsing
    here keeps every error in ours.
    """
    try:
        return json.loads((request.raw_body or b"").decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.BadRequest("the request body is not valid JSON", code="invalid_json") from exc


def authorization(request) -> str | None:
    return request.headers.get("authorization")


def query_param(request, name: str) -> str | None:
    return (request.query_params or {}).get(name)


def flag(raw: str | None) -> bool:
    """A boolean query parameter: true/1/yes, false/0/no, or absent."""
    if raw is None or raw.lower() in ("false", "0", "no"):
        return False
    if raw.lower() in ("true", "1", "yes"):
        return True
    raise errors.BadRequest(f"expected true or false, got {raw!r}", code="invalid_flag")


def remaining_seconds(lambda_context, fallback: float = 25.0):
    """A callable giving the invocation's remaining time in seconds, from
    the Lambda context (the local server's fake context may lack it)."""
    remaining_ms = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        deadline = time.monotonic() + fallback
        return lambda: max(0.0, deadline - time.monotonic())
    return lambda: remaining_ms() / 1000


def json_response(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def no_content() -> Response:
    return Response(body="", status_code=204)


def feed_response(reply) -> Response:
    """A `syndication.FeedReply` as 200 with the document, or 304 without one."""
    if reply.body is None:
        return Response(body="", status_code=304, headers=reply.headers)
    return Response(body=reply.body, status_code=200, headers=reply.headers)


def post_created(created) -> Response:
    headers = {"Location": f"/posts/{created.post.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(created.post.to_public(), 202 if created.spooled else 201, headers)


# -- middleware ---------------------------------------------------------------


def middleware(event, get_response):
    """Per request: correlation id, body size limit, error-shape
    normalisation, one access-log line, and the metrics flush."""
    started = time.perf_counter()
    logger.set_correlation_id((event.context or {}).get("requestId"))
    response = _body_too_large(event) or get_response(event)
    response = _in_our_error_shape(response)
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


def _body_too_large(request) -> Response | None:
    limit = wiring.settings().max_body_bytes
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else len(request.raw_body or b"")
    if size <= limit:
        return None
    return error_response(errors.PayloadTooLarge(f"the request body exceeds {limit} bytes", code="body_too_large"))


def _in_our_error_shape(response: Response) -> Response:
    """Rewrite Chalice's own errors ({"Code", "Message"}: unlisted content
    type, unknown method, unhandled exception) into {"error", "message"}."""
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
    return Response(body={"error": code, "message": message}, status_code=response.status_code, headers=headers)
