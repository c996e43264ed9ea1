"""Where Chalice's local gateway (`chalice local`, and `chalice.test.Client`)
routes unlike API Gateway, made alike:

- a greedy path parameter, `/{proxy+}`, which API Gateway matches against
  any path no other resource matches. Without it every unknown path
  answered the local server's own 403 "Missing Authentication Token", while
  deployed it reaches the app's catch-all route;
- OPTIONS on a route that declares none: the local gateway answered it
  itself (200, with only `Access-Control-Allow-Methods: OPTIONS`), which
  API Gateway never does. The app answers it now, as any undeclared method.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from chalice.local import LocalGateway, MatchResult, RouteMatcher

GREEDY_SUFFIX = "+}"


def install_api_gateway_routing() -> None:
    """Route locally as API Gateway does (see the module docstring); idempotent."""
    if getattr(RouteMatcher.match_route, "greedy", False):
        return
    LocalGateway._has_user_defined_options_method = lambda self, event: True
    exact_match = RouteMatcher.match_route

    def match_route(self, url: str) -> MatchResult:
        try:
            return exact_match(self, url)
        except ValueError:
            greedy = _greedy_match(self.route_urls, url)
            if greedy is None:
                raise
            return greedy

    match_route.greedy = True
    RouteMatcher.match_route = match_route


def _greedy_match(route_urls: list[str], url: str) -> MatchResult | None:
    """The longest `/prefix/{name+}` route whose prefix `url` starts with,
    the rest of the path captured as `name`, as API Gateway does."""
    parsed = urlparse(url)
    path = parsed.path.rstrip("/") if parsed.path != "/" else parsed.path
    candidates = []
    for route in route_urls:
        prefix, slash, last = route.rpartition("/")
        if slash and last.startswith("{") and last.endswith(GREEDY_SUFFIX) and path.startswith(prefix + "/"):
            rest = path[len(prefix) + 1 :]
            if rest:
                candidates.append((len(prefix), route, last[1 : -len(GREEDY_SUFFIX)], rest))
    if not candidates:
        return None
    _, route, name, rest = max(candidates)
    return MatchResult(route, {name: rest}, parse_qs(parsed.query, keep_blank_values=True))
