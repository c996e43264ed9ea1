"""A person at the authorize page, scripted: read the sign-in form with
html.parser, fill in the username and password, send it back."""

from __future__ import annotations

import html.parser
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class SignInForm:
    action: str = ""
    method: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, str]] = field(default_factory=list)
    buttons: int = 0

    def filled(self, username: str, password: str) -> dict[str, str]:
        return {**self.fields, "username": username, "password": password}

    def encoded(self, username: str, password: str) -> str:
        return urllib.parse.urlencode(self.filled(username, password))


class _FormReader(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[SignInForm] = []

    def handle_starttag(self, tag, attrs):
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(SignInForm(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs.append(values)
            if values.get("name"):
                self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms and values.get("type", "submit") == "submit":
            self.forms[-1].buttons += 1


def read_form(page: str) -> SignInForm:
    """The page's one form; AssertionError if it has none or several."""
    reader = _FormReader()
    reader.feed(page)
    assert len(reader.forms) == 1, f"expected one form, found {len(reader.forms)}"
    return reader.forms[0]


def cookie_from(set_cookie: str | None) -> str:
    """The name=value of a Set-Cookie header, for the next request's Cookie."""
    assert set_cookie, "the page set no cookie"
    return set_cookie.split(";", 1)[0]
