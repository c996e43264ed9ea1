"""Shared hypothesis settings and strategies for the parsing properties.

Runs are bounded and reproducible: a fixed number of examples, derandomized
(the same examples on every machine and every run), no example database
(nothing carried between runs), and no deadline (a shared CI machine's
pauses are not failures). `--hypothesis-show-statistics` counts them.
"""

from __future__ import annotations

import datetime
import email.utils
import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def bounded(examples: int, *, http: bool = False) -> settings:
    """`examples` reproducible examples; `http` for tests that reuse one
    moto-backed app across examples (their state only grows, and each
    example checks only the answer's shape)."""
    checks = [HealthCheck.too_slow, HealthCheck.data_too_large]
    if http:
        checks.append(HealthCheck.function_scoped_fixture)
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=checks)


# -- text ---------------------------------------------------------------------

# Digits of every script (category Nd): '٣' and fullwidth '5' (U+FF15) pass str.isdigit() and
# int(); the superscripts ('²', category No) pass str.isdigit() but not int().
other_digits = st.characters(categories=["Nd", "No"], min_codepoint=0x80)
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Everything a decoded request may hold, surrogates and controls included.
any_char = st.one_of(st.characters(), lone_surrogates)


def texts(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text of `any_char`, with lone surrogates about as often as not.
    (`st.text(any_char)` would merge the alphabet and favour low code
    points: one example in 500 held a surrogate.)"""
    return st.lists(any_char, min_size=min_size, max_size=max_size).map("".join)


any_text = texts()


def digits(min_size: int = 1, max_size: int = 30) -> st.SearchStrategy[str]:
    return st.text(st.characters(categories=["Nd"]) | other_digits, min_size=min_size, max_size=max_size)


numberish = st.one_of(
    any_text,
    digits(),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.sampled_from(["", " 5", "5 ", "+5", "-0", "0x10", "1_0", "1e3", "²", "٣", "\uff15", "\u0660", "5\n", "NaN"]),
)


# Every HTTP date from year 1 to 9999, in RFC 5322 form (a "-0000" zone).
http_dates = st.datetimes(min_value=datetime.datetime(1, 1, 2)).map(
    lambda moment: email.utils.format_datetime(moment, usegmt=False)
)


# -- JSON -----------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    texts(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def nested(depth: int, opener: str) -> str:
    """`depth` levels of `[` or `{"a":`, closed or left open."""
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


depths = st.integers(min_value=0, max_value=20_000)
# Closed and unclosed nesting, from none to far past any recursion limit.
deep_json = st.builds(nested, depths, st.sampled_from(["[", "{"])) | st.builds(
    lambda depth, opener: opener * depth, depths, st.sampled_from(["[", "{", '{"a":'])
)


def json_text(value: object) -> str:
    """JSON text for a value that may hold lone surrogates (escaped)."""
    return json.dumps(value, ensure_ascii=True)


def encoded(text: str) -> st.SearchStrategy[bytes]:
    """`text` in the encodings clients get wrong: UTF-8 with and without a
    BOM, UTF-16 (both byte orders, with its BOM), UTF-32, Latin-1."""

    def encode(codec: str) -> bytes:
        return text.encode(codec, "surrogatepass" if codec.startswith("utf") else "replace")

    return st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"]).map(encode)


json_bodies = st.one_of(
    json_values.map(json_text).flatmap(encoded),
    deep_json.map(str.encode),
    st.binary(max_size=64),
    st.sampled_from([b"NaN", b"[Infinity]", b'{"text": -Infinity}', b"1" * 5000, b'{"a":1,}', b"\xef\xbb\xbf{}"]),
)


def chalice_request(headers: dict[str, str], body: bytes = b"", query: dict[str, list[str]] | None = None):
    """A real `chalice.app.Request`, as API Gateway's proxy event builds it,
    for the edge's parsers (base64, so any bytes arrive unchanged)."""
    import base64

    from chalice.app import Request

    return Request(
        {
            "multiValueQueryStringParameters": query,
            "headers": headers,
            "pathParameters": None,
            "requestContext": {"httpMethod": "POST", "resourcePath": "/"},
            "body": base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": True,
            "stageVariables": None,
        }
    )
