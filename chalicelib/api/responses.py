"""Building responses: JSON, empty, feeds, a created post, and Mastodon's
paged lists with their Link header; the public origin the links name."""

from __future__ import annotations

import re
import urllib.parse

from chalice import Response

from chalicelib import wiring

JSON = "application/json"
# For answers that carry a secret shown once (RFC 6749, section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PAGE_PARAMS = frozenset({"max_id", "min_id", "since_id"})


def json_response(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def page_response(page) -> Response:
    """An `oauth.pages.Page`: HTML, or a redirect, with its own headers."""
    return Response(body=page.body, status_code=page.status, headers=page.headers)


def no_content() -> Response:
    return Response(body="", status_code=204)


def image_response(image: str, content_type: str) -> Response:
    """A text image (SVG) that never changes at its path: cached for a day."""
    headers = {"Content-Type": content_type, "Cache-Control": "public, max-age=86400"}
    return Response(body=image, status_code=200, headers=headers)


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


def mastodon_page(request, items: list, next_max_id: str | None, prev_min_id: str | None) -> Response:
    """A list with Mastodon's Link header: rel=next (older, max_id) and
    rel=prev (newer, min_id), keeping the other query parameters."""
    base = origin(request) + _url_path(request)
    kept = {name: value for name, value in (request.query_params or {}).items() if name not in _PAGE_PARAMS}
    links = []
    if next_max_id is not None:
        links.append(f'<{base}?{urllib.parse.urlencode({**kept, "max_id": next_max_id})}>; rel="next"')
    if prev_min_id is not None:
        links.append(f'<{base}?{urllib.parse.urlencode({**kept, "min_id": prev_min_id})}>; rel="prev"')
    return json_response(items, headers={"Link": ", ".join(links)} if links else None)


def _url_path(request) -> str:
    """The path the client asked for, below `origin`: the route with its
    parameters filled in. Not `context["path"]`, which on API Gateway also
    holds the stage that PUBLIC_BASE_URL already ends with."""
    values = request.uri_params or {}
    return re.sub(r"{(\w+)}", lambda name: urllib.parse.quote(values[name.group(1)], safe=""), request.path)
