"""The HTTP edge: the one place where errors become status codes and JSON
bodies, request parsing shared by the views, and the request middleware."""

from __future__ import annotations

import functools
import re
import time
import urllib.parse

from chalice import Response

from chalicelib import errors, wiring
from chalicelib.core import parsing
from chalicelib.observability import flush_metrics, logger, traced

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
    # The base class itself, and any subclass not listed: a 400, not a
    # crash of this map. error_response looks classes up along the MRO, so
    # the most specific listed class decides.
    errors.LifeboatError: 400,
}
STORE_RETRY_AFTER_SECONDS = 5


def error_response(error: errors.LifeboatError) -> Response:
    status = next(_STATUS_BY_ERROR[cls] for cls in type(error).__mro__ if cls in _STATUS_BY_ERROR)
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


def router(app, render_error=error_response):
    """`app.route`, with domain errors turned into JSON error responses
    (`render_error` shapes them: ours, or Mastodon's)."""

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
                    return render_error(domain_error)

            return app.route(path, **options)(guarded)

        return register

    return route


def json_body(request) -> object:
    """The request body parsed as JSON, or BadRequest: the only place a
    request's JSON is read, so every route has the same bounds
    (chalicelib/core/parsing.py: nesting depth, no NaN).

    Chalice's own parser answers in its {"Code", "Message"} shape; parsing
    here keeps every error in ours.
    """
    try:
        text = raw_body(request).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.BadRequest("the request body is not valid JSON: it is not UTF-8", code="invalid_json") from exc
    try:
        return parsing.loads_json(text)
    except parsing.JsonRejected as exc:
        raise errors.BadRequest(f"the request body is not valid JSON: {exc.reason}", code="invalid_json") from exc


def raw_body(request) -> bytes:
    """The body's bytes; BadRequest when the event carries it as text that
    is not Unicode (a lone surrogate), which Chalice cannot encode."""
    try:
        return request.raw_body or b""
    except UnicodeEncodeError as exc:
        raise errors.BadRequest("the request body is not valid text", code="invalid_body") from exc


def text_body(request) -> str:
    try:
        return raw_body(request).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise errors.BadRequest("the request body is not UTF-8", code="invalid_body") from exc


def authorization(request) -> str | None:
    """The Authorization header, or Unauthorized when it is not text at all:
    a Lambda event's JSON may carry a lone surrogate, which no token holds
    and which hashing (UTF-8) cannot read."""
    value = request.headers.get("authorization")
    if value is not None and not _is_unicode_text(value):
        raise errors.Unauthorized("the Authorization header is not valid text", code="invalid_token")
    return value


def _is_unicode_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    if created.repeated:
        headers["Idempotent-Replayed"] = "true"
    return json_response(created.post.to_public(), 202 if created.spooled else 201, headers)


# -- middleware ---------------------------------------------------------------


def middleware(event, get_response):
    """Per request: correlation id, body size limit, error-shape
    normalisation, one access-log line, and the metrics flush."""
    started = time.perf_counter()
    logger.set_correlation_id((event.context or {}).get("requestId"))
    with traced(f"## {event.method} {event.path}", method=event.method):
        refused = _refused_body(event)
        response = _render_error_for(event)(refused) if refused else get_response(event)
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


def _render_error_for(request):
    """The error shape of the route family the request is for."""
    return mastodon_error_response if request.path.startswith("/api/") else error_response


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


# -- the Mastodon API's edge ---------------------------------------------------------

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
CLIENT_API_CONTENT_TYPES = [FORM, MULTIPART, JSON]


def mastodon_error_response(error: errors.LifeboatError) -> Response:
    """Mastodon's error shape: `{"error": "<human-readable text>"}`, with
    the same statuses as the native API."""
    native = error_response(error)
    return Response(body={"error": error.message}, status_code=native.status_code, headers=native.headers)


def mastodon_router(app):
    """`app.route` for the Mastodon API: domain errors in Mastodon's shape."""
    return router(app, mastodon_error_response)


def form_fields(request) -> dict[str, list[str]]:
    """A request's fields, each a list of values, from a form-encoded,
    multipart or JSON body: Mastodon accepts all three."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    raw = raw_body(request)
    if media_type == JSON:
        body = json_body(request) if raw else {}
        if not isinstance(body, dict):
            raise errors.BadRequest("the request body must be a JSON object", code="invalid_body")
        return {name: value if isinstance(value, list) else [value] for name, value in body.items()}
    if media_type == MULTIPART:
        return _multipart_fields(content_type, raw)
    try:
        # errors="strict": a percent-encoded byte that is not UTF-8 (or a
        # surrogate) must be refused, not stored as U+FFFD in the post.
        return urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise errors.BadRequest("the request body is not UTF-8", code="invalid_body") from exc


def _multipart_fields(content_type: str, raw: bytes) -> dict[str, list[str]]:
    try:
        # HTTP field values are Latin-1 at most (RFC 9110, section 5.5).
        header = content_type.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise errors.BadRequest("the Content-Type header is not Latin-1 text", code="invalid_content_type") from exc
    # Only Mastodon media forms need these: imported here, off the cold start.
    import email.parser
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + header + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        raise errors.BadRequest("the multipart body cannot be read", code="invalid_body")
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields.setdefault(name, []).append(_part_text(part) if part.get_content_maintype() == "text" else "")
    return fields


def _part_text(part) -> str:
    """A text part's value in its declared charset, else UTF-8: what browsers
    and HTTP clients send (email's default, ASCII, would garble it)."""
    charset = part.get_content_charset() or "utf-8"
    try:
        return (part.get_payload(decode=True) or b"").decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise errors.BadRequest("a multipart field is not text in its charset", code="invalid_body") from exc


def query_params(request) -> dict[str, str]:
    return dict(request.query_params or {})


def origin(request) -> str:
    """Where clients reach the API, for the links in entities and headers:
    `PUBLIC_BASE_URL`, never the request's Host or X-Forwarded-Proto, which
    any client can forge (and a cache would then serve the forged links to
    everyone). The request is taken so that views read alike; its headers
    are ignored on purpose."""
    return wiring.settings().public_base_url


def instance_domain(request) -> str:
    """The domain the instance entities name: `INSTANCE_DOMAIN`, else the
    host of `PUBLIC_BASE_URL`; never the request's Host, for the reason
    `origin` gives."""
    settings = wiring.settings()
    return settings.instance_domain or urllib.parse.urlsplit(settings.public_base_url).netloc


def _url_path(request) -> str:
    """The path the client asked for, below `origin`: the route with its
    parameters filled in. Not `context["path"]`, which on API Gateway also
    holds the stage that PUBLIC_BASE_URL already ends with."""
    values = request.uri_params or {}
    return re.sub(r"{(\w+)}", lambda name: urllib.parse.quote(values[name.group(1)], safe=""), request.path)


def mastodon_page(request, items: list, next_max_id: str | None, prev_min_id: str | None) -> Response:
    """A list with Mastodon's Link header: rel=next (older, max_id) and
    rel=prev (newer, min_id), keeping the other query parameters."""
    base = origin(request) + _url_path(request)
    kept = {name: value for name, value in query_params(request).items() if name not in _PAGE_PARAMS}
    links = []
    if next_max_id is not None:
        links.append(f'<{base}?{urllib.parse.urlencode({**kept, "max_id": next_max_id})}>; rel="next"')
    if prev_min_id is not None:
        links.append(f'<{base}?{urllib.parse.urlencode({**kept, "min_id": prev_min_id})}>; rel="prev"')
    return json_response(items, headers={"Link": ", ".join(links)} if links else None)


_PAGE_PARAMS = frozenset({"max_id", "min_id", "since_id"})
