"""Reading requests: the body (JSON, bytes, text, form fields), the query
parameters and the Authorization header, each refused with a domain error
when it cannot be read, so every route has the same bounds."""

from __future__ import annotations

import urllib.parse

from chalicelib import errors
from chalicelib.api.responses import JSON
from chalicelib.core import parsing

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
CLIENT_API_CONTENT_TYPES = [FORM, MULTIPART, JSON]


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


def client_address(request) -> str:
    """The client's address as API Gateway saw it (never a header the client
    sets, such as X-Forwarded-For)."""
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def query_param(request, name: str) -> str | None:
    return (request.query_params or {}).get(name)


def query_values(request, name: str) -> list[str]:
    """Every value of a list parameter, sent as `name[]=` (Rails' form, what
    Mastodon clients send) or as repeated `name=`."""
    params = request.query_params
    if not params:
        return []
    return [value for key in (f"{name}[]", name) if key in params for value in params.getlist(key)]


def query_params(request) -> dict[str, str]:
    return dict(request.query_params or {})


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
