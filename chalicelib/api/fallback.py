"""The routes no view declares: the catch-all `/{proxy+}` that answers 404
for a path Lifeboat does not serve (in Mastodon's shape under /api/, ours
elsewhere), and the preflight OPTIONS of every cross-origin path (declared
by api/routing.py with each route there).

API Gateway answers a path with no resource itself ("Missing Authentication
Token"), and its gateway responses cannot vary the body by path; a greedy
resource sends such paths to the app instead, which also answers their
preflights. The local server matches `/{proxy+}` the same way
(devtools/local_gateway.py).
"""

from __future__ import annotations

from chalice import Response

from chalicelib import errors
from chalicelib.api import cors
from chalicelib.api.errors import error_response, mastodon_error_response

CATCH_ALL = "/{proxy+}"
GREEDY_PARAMETER = "proxy"
# Every method API Gateway routes (its ANY): an unknown path is a 404 for all.
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ANY_CONTENT_TYPE = ["*/*"]


def requested_path(request) -> str:
    """The path the client asked for, as far as routing goes: the route's
    template (its literal prefix is what matters), except under the
    catch-all, whose greedy parameter holds the path itself."""
    if request.path == CATCH_ALL:
        return "/" + (request.uri_params or {}).get(GREEDY_PARAMETER, "")
    return request.path


def is_mastodon_path(path: str) -> bool:
    return path.startswith("/api/")


def render_error_for(path: str):
    """The error shape of the route family `path` belongs to."""
    return mastodon_error_response if is_mastodon_path(path) else error_response


def unknown_path(request) -> Response:
    """A path Lifeboat does not serve: its preflight, if browsers may call
    it, else 404."""
    path = requested_path(request)
    if request.method == "OPTIONS":
        answer = cors.preflight(path, request.headers.get("access-control-request-headers"))
        if answer is not None:
            return answer
    return render_error_for(path)(errors.NotFound("Record not found", code="not_found"))


def preflight_view(request) -> Response:
    """OPTIONS on a declared cross-origin path."""
    return cors.preflight(requested_path(request), request.headers.get("access-control-request-headers"))
