"""A person signing in on the authorize page over real HTTP: opens the
app's URL, reads the form with html.parser, types a username and password,
sends it with the page's cookie, and reads the code from the redirect (which
goes to the app, so it is not followed)."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request

from tests.oauth_forms import read_form


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def sign_in(authorize_url: str, username: str, password: str) -> tuple[int, dict, str]:
    """(status, headers, body) of the form's answer."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect)
    with opener.open(authorize_url, timeout=30) as page:
        form = read_form(page.read().decode())
    action = urllib.parse.urljoin(authorize_url, form.action)
    request = urllib.request.Request(action, data=form.encoded(username, password).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers), answer.read().decode()


def code_from_redirect(answer: tuple[int, dict, str], redirect_uri: str) -> tuple[str, str | None]:
    """The code and state in the redirect to the app (`answer` is `sign_in`'s)."""
    status, headers, body = answer
    assert status == 302, (status, body[-500:])
    location = headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    return query["code"][0], query.get("state", [None])[0]
