"""Properties of every parser that reads a client's (or a primary's) text.

Each parser, given anything at all, either returns a valid value or raises
the one error its caller turns into a 4xx: never another exception. The
inputs include deep nesting, numbers of thousands of digits, digits of
other scripts (Unicode Nd and No), lone surrogates and odd encodings.
Runs are bounded and reproducible (tests/properties.py).
"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chalicelib import errors
from chalicelib.accounts.tokens import bearer_token
from chalicelib.api import errors as api_errors
from chalicelib.api import requests as api_requests
from chalicelib.core import ids, parsing
from chalicelib.core.models import NewPost, parse_idempotency_key, parse_new_post, validate_username
from chalicelib.core.pagination import decode_cursor, encode_cursor, parse_limit
from chalicelib.feeds import conditional
from chalicelib.mastodon import ids as mastodon_ids
from chalicelib.mastodon.follows import MAX_IMPORT_ROWS, parse_following_csv
from chalicelib.mastodon.forms import parse_status_form
from chalicelib.upstream.headers import MAX_RETRY_AFTER_SECONDS, parse_rate_limit, parse_retry_after
from tests.properties import (
    any_char,
    any_text,
    bounded,
    chalice_request,
    deep_json,
    digits,
    encoded,
    http_dates,
    json_bodies,
    json_text,
    json_values,
    nested,
    numberish,
    other_digits,
    texts,
)

NOW = 1_717_000_000.0
INT64_MAX = (1 << 63) - 1
ulids = st.integers(min_value=0, max_value=ids.MAX_ULID_VALUE).map(ids.ulid_from_value)


REFUSED = object()


def parsed_or_refused(parse, *args, refusal, codes: set[str] | None = None):
    """`parse(*args)`, or REFUSED when it raised `refusal` (with a code in
    `codes`): the one way a parser may fail. Any other exception propagates
    and fails the test."""
    try:
        return parse(*args)
    except refusal as refused:
        assert codes is None or refused.code in codes, refused.code
        return REFUSED


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


# -- integers -------------------------------------------------------------------


@bounded(400)
@given(numberish, st.booleans())
@example("²", False)
@example("٣", False)
@example("9" * 5000, True)
def test_an_integer_is_ascii_digits_or_none(text, signed):
    value = parsing.ascii_integer(text, signed=signed)

    if value is not None:
        body = text.removeprefix("-") if signed else text
        assert text.isascii() and body.isdigit() and 1 <= len(body) <= parsing.MAX_INTEGER_DIGITS
        assert int(text) == value


@bounded(200)
@given(st.integers(min_value=-INT64_MAX - 1, max_value=INT64_MAX))
def test_every_64_bit_integer_reads_back(number):
    assert parsing.ascii_integer(str(number), signed=True) == number
    assert parsing.ascii_integer(str(number)) == (number if number >= 0 else None)


@bounded(200)
@given(digits(), st.data())
def test_digits_of_other_scripts_are_never_a_number(text, data):
    # One digit that is not ASCII anywhere in an otherwise valid number.
    position = data.draw(st.integers(min_value=0, max_value=len(text)))
    mixed = text[:position] + data.draw(other_digits) + text[position:]

    assert parsing.ascii_integer(mixed) is None
    assert parsing.ascii_integer(mixed, signed=True) is None


# -- page sizes, ids and cursors -------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "٣", "\uff15", "9" * 5000, "1" * 20])
def test_a_native_limit_in_other_digits_or_too_long_is_a_bad_request(raw):
    with pytest.raises(errors.BadRequest) as caught:
        parse_limit(raw, 20, 100)
    assert caught.value.code == "invalid_limit"


@pytest.mark.parametrize(
    ("raw", "size"), [("-5", 5), ("-0", 1), ("0", 1), ("-1000", 40), ("7", 7), ("1000", 40), ("", 20)]
)
def test_a_mastodon_limit_is_clamped_as_mastodon_does_negatives_by_their_size(raw, size):
    assert parse_limit(raw, 20, 40, clamp=True) == size


@pytest.mark.parametrize("raw", ["²", "٣", "9" * 5000, "-" + "9" * 5000])
def test_a_mastodon_limit_in_other_digits_or_too_long_is_refused(raw):
    with pytest.raises(errors.ValidationFailed) as caught:
        parse_limit(raw, 20, 40, clamp=True)
    assert caught.value.code == "invalid_limit"


@bounded(300)
@given(numberish)
def test_a_native_limit_is_in_range_or_a_bad_request(text):
    size = parsed_or_refused(parse_limit, text, 20, 100, refusal=errors.BadRequest, codes={"invalid_limit"})

    assert size is REFUSED or (1 <= size <= 100 and text.isascii() and int(text) == size)


@bounded(300)
@given(st.dictionaries(st.sampled_from(["limit", "max_id", "since_id", "min_id", "other"]), numberish, max_size=5))
def test_a_mastodon_window_is_valid_or_a_validation_failure(params):
    codes = {"invalid_limit", "invalid_id"}
    window = parsed_or_refused(mastodon_ids.window_from_params, params, refusal=errors.ValidationFailed, codes=codes)

    if window is not REFUSED:
        assert ids.is_ulid(window.lowest) and ids.is_ulid(window.highest)
        assert 1 <= window.limit <= mastodon_ids.MAX_LIMIT


@bounded(300)
@given(numberish)
def test_a_mastodon_id_is_a_64_bit_number_or_none(text):
    number = mastodon_ids.parse_id(text)

    assert number is None or (0 <= number <= mastodon_ids.MAX_ID and text.isascii() and int(text) == number)


@bounded(200)
@given(ulids)
def test_a_cursor_round_trips(post_id):
    assert decode_cursor(encode_cursor(post_id)) == post_id


def _cursor_of(text: str) -> str:
    """A cursor as encode_cursor makes one, for any text (a forged one)."""
    return encode_cursor(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


@bounded(300)
@given(
    st.one_of(
        any_text,
        ulids.map(lambda post_id: encode_cursor(post_id)[:-1]),
        st.text("AZaz09_=-", max_size=60),
        st.tuples(ulids, any_text).map(lambda pair: _cursor_of(pair[0] + pair[1])),
    )
)
@example(_cursor_of("01ARZ3NDEKTSV4RRFFQ69G5FAV\n"))
def test_a_cursor_is_a_post_id_or_a_bad_request(text):
    post_id = parsed_or_refused(decode_cursor, text, refusal=errors.BadRequest, codes={"invalid_cursor"})

    # An id the store could have made: it reads back as itself.
    assert post_id is REFUSED or ids.ulid_from_value(ids.ulid_value(post_id)) == post_id


@bounded(300)
@given(st.one_of(any_text, st.from_regex(r"[a-z0-9_]{1,30}\n?", fullmatch=True)))
@example("alice\n")
def test_a_username_is_lowercase_ascii_or_a_validation_failure(text):
    name = parsed_or_refused(validate_username, text, refusal=errors.ValidationFailed, codes={"invalid_username"})

    if name is not REFUSED:
        assert (
            name == text
            and 1 <= len(text) <= 30
            and all(char in "abcdefghijklmnopqrstuvwxyz0123456789_" for char in text)
        )


def test_a_language_with_a_trailing_newline_is_refused():
    with pytest.raises(errors.ValidationFailed) as caught:
        parse_status_form({"status": ["hi"], "language": ["en\n"]}, None, 500)
    assert caught.value.code == "invalid_language"


# -- flags and headers -------------------------------------------------------------


@bounded(200)
@given(any_text | st.sampled_from(["true", "TRUE", "1", "yes", "false", "0", "No"]))
def test_a_flag_is_a_bool_or_a_bad_request(text):
    value = parsed_or_refused(parsing.flag, text, refusal=errors.BadRequest, codes={"invalid_flag"})

    assert value is REFUSED or isinstance(value, bool)


@bounded(300)
@given(st.one_of(any_text, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=250, max_size=260)))
@example("key\n")
def test_an_idempotency_key_is_printable_ascii_or_a_bad_request(text):
    codes = {"invalid_idempotency_key"}
    key = parsed_or_refused(parse_idempotency_key, text, refusal=errors.BadRequest, codes=codes)

    if key is not REFUSED:
        assert key == text and text.isascii() and text.isprintable() and " " not in text and 1 <= len(text) <= 255


@bounded(300)
@given(st.one_of(any_text, any_text.map(lambda token: "Bearer " + token), st.just("bearer  \t ")))
def test_a_bearer_token_is_found_or_unauthorized(text):
    token = parsed_or_refused(bearer_token, text, refusal=errors.Unauthorized, codes={"missing_token"})

    if token is not REFUSED:
        assert token and token == token.strip() and text.strip().lower().startswith("bearer ")


header_text = st.one_of(
    any_text, http_dates, st.sampled_from(["*", 'W/"x"', '"x", W/"y"', '"', "Mon, 99 Foo 2024", "Sun, 06 Nov 99999"])
)


@bounded(300)
@given(st.dictionaries(st.sampled_from(["If-None-Match", "if-modified-since", "If-Modified-Since"]), header_text))
def test_conditional_headers_decide_or_are_ignored(headers):
    answer = conditional.is_not_modified(headers, etag='"x"', last_modified="Sun, 06 Nov 1994 08:49:37 GMT")

    assert isinstance(answer, bool)


@bounded(300)
@given(st.one_of(numberish, http_dates, st.none()), st.one_of(numberish, st.none()))
@example(None, "9" * 5000)
def test_a_primarys_rate_headers_are_read_or_ignored(retry_after, limit):
    wait = parse_retry_after(retry_after, NOW)
    assert wait is None or 0 <= wait <= MAX_RETRY_AFTER_SECONDS

    headers = {name: value for name, value in [("X-RateLimit-Limit", limit), ("X-RateLimit-Remaining", limit)] if value}
    rate = parse_rate_limit({**headers, "X-RateLimit-Reset": retry_after or ""}, NOW)
    assert rate is None or all(value is None or value >= 0 for value in (rate.limit, rate.remaining))


# -- JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", "{"])
def test_deep_nesting_is_refused_not_a_recursion_error(opener):
    with pytest.raises(parsing.JsonRejected):
        parsing.loads_json(nested(50_000, opener))


@bounded(300)
@given(json_values)
def test_json_within_the_depth_limit_reads_as_the_standard_parser_reads_it(value):
    text = json_text(value)

    assert parsing.json_depth(text) == depth_of(value)
    if depth_of(value) <= parsing.MAX_JSON_DEPTH:
        # json.loads, not `value`: an escaped surrogate pair reads as one character.
        assert parsing.loads_json(text) == json.loads(text)


@bounded(200)
@given(deep_json)
def test_nesting_beyond_the_limit_is_refused_and_within_it_is_read(text):
    value = parsed_or_refused(parsing.loads_json, text, refusal=parsing.JsonRejected)

    assert value is REFUSED or parsing.json_depth(text) <= parsing.MAX_JSON_DEPTH


@bounded(400)
@given(json_bodies)
def test_a_json_body_is_a_value_or_invalid_json(body):
    request = chalice_request({"content-type": "application/json"}, body)

    parsed_or_refused(api_requests.json_body, request, refusal=errors.BadRequest, codes={"invalid_json"})


@pytest.mark.parametrize("body", [b"NaN", b"[Infinity]", b'{"text": -Infinity}'])
def test_nan_and_infinity_are_not_json(body):
    with pytest.raises(errors.BadRequest):
        api_requests.json_body(chalice_request({}, body))


@bounded(300)
@given(json_values | json_values.map(lambda value: {"text": value}) | st.fixed_dictionaries({"text": any_text}))
def test_a_native_post_body_is_a_new_post_or_a_4xx(body):
    new = parsed_or_refused(parse_new_post, body, None, 500, refusal=(errors.BadRequest, errors.ValidationFailed))

    assert new is REFUSED or (isinstance(new, NewPost) and new.text.strip() and len(new.text) <= 500)


@bounded(200)
@given(st.one_of(any_text, texts(max_size=60)).flatmap(encoded))
def test_a_text_body_is_text_or_a_bad_request(body):
    text = parsed_or_refused(
        api_requests.text_body, chalice_request({}, body), refusal=errors.BadRequest, codes={"invalid_body"}
    )

    assert text is REFUSED or isinstance(text, str)


# -- Mastodon forms: form-encoded, multipart and JSON ------------------------------------------

FIELD_NAMES = ["status", "spoiler_text", "language", "visibility", "in_reply_to_id", "media_ids[]", "poll[options][]"]
field_names = st.sampled_from(FIELD_NAMES) | texts(max_size=8)
charsets = st.sampled_from([None, "utf-8", "UTF-8", "latin-1", "utf-16", "us-ascii", "x-no-such-charset", ""])


def _quoted(text: str) -> str:
    return urllib.parse.quote(text, errors="surrogatepass")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@st.composite
def multipart(draw) -> tuple[str, bytes]:
    boundary = draw(st.sampled_from(["b0undary", "a'b(c)"]) | texts(min_size=1, max_size=12))
    body = b""
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        lines = [b'Content-Disposition: form-data; name="' + _utf8(draw(field_names)) + b'"']
        charset = draw(charsets)
        if charset is not None:
            lines.append(b"Content-Type: text/plain; charset=" + _utf8(charset))
        encoding = draw(st.sampled_from([None, "base64", "quoted-printable", "8bit", "x-bogus"]))
        if encoding:
            lines.append(b"Content-Transfer-Encoding: " + _utf8(encoding))
        payload = draw(st.one_of(st.binary(max_size=24), any_text.map(_utf8)))
        body += b"--" + _utf8(boundary) + b"\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + payload + b"\r\n"
    body += b"--" + _utf8(boundary) + b"--\r\n"
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    parameter = f'"{boundary}"' if draw(st.booleans()) else boundary
    content_type = f"multipart/form-data; boundary={parameter}"
    return content_type + draw(st.sampled_from(["", "; charset=utf-8", "; x=\u0100"])), body[:cut] if cut else body


form_bodies = st.one_of(
    st.tuples(st.sampled_from(["application/x-www-form-urlencoded", "", "text/plain"]), st.binary(max_size=64)),
    st.tuples(
        st.sampled_from(["application/x-www-form-urlencoded"]),
        st.dictionaries(field_names, any_text, max_size=4).map(
            lambda fields: "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in fields.items()).encode()
        ),
    ),
    st.tuples(
        st.sampled_from(["application/json", "Application/JSON; charset=utf-8"]),
        st.one_of(json_bodies, st.dictionaries(field_names, json_values, max_size=4).map(json_text).map(str.encode)),
    ),
    multipart(),
)


@bounded(500)
@given(form_bodies, st.one_of(st.none(), any_text))
@example(("multipart/form-data; boundary=\u0100", b"--\xc4\x80--\r\n"), None)
def test_a_mastodon_status_form_is_a_new_post_or_a_4xx(content, key):
    content_type, body = content
    request = chalice_request({"content-type": content_type}, body)
    refusal = (errors.BadRequest, errors.ValidationFailed)
    form = parsed_or_refused(api_requests.form_fields, request, refusal=refusal)
    new = REFUSED if form is REFUSED else parsed_or_refused(parse_status_form, form, key, 500, refusal=refusal)

    assert new is REFUSED or (new.text.strip() and len(new.text) + len(new.spoiler_text) <= 500)


def test_a_multipart_content_type_that_is_not_latin_1_is_a_bad_request():
    request = chalice_request({"content-type": "multipart/form-data; boundary=\u0100"}, b"--\xc4\x80--\r\n")

    with pytest.raises(errors.BadRequest) as caught:
        api_requests.form_fields(request)
    assert caught.value.code == "invalid_content_type"


def _multipart_status(part_headers: bytes, payload: bytes):
    head = b'--B\r\nContent-Disposition: form-data; name="status"\r\n' + part_headers
    body = head + b"\r\n" + payload + b"\r\n--B--\r\n"
    return chalice_request({"content-type": "multipart/form-data; boundary=B"}, body)


def test_a_multipart_field_without_a_charset_is_utf_8():
    fields = api_requests.form_fields(_multipart_status(b"", "café 🛟".encode()))

    assert fields == {"status": ["café 🛟"]}


def test_a_multipart_field_in_an_unknown_charset_is_a_bad_request():
    with pytest.raises(errors.BadRequest):
        api_requests.form_fields(_multipart_status(b"Content-Type: text/plain; charset=x-no-such-charset\r\n", b"hi"))


@pytest.mark.parametrize(
    ("value", "name"), [({"status": {"a": 1}}, "status"), ({"status": "x", "language": [["en"]]}, "language")]
)
def test_a_json_object_is_not_taken_as_a_status_field(value, name):
    request = chalice_request({"content-type": "application/json"}, json.dumps(value).encode())

    with pytest.raises(errors.ValidationFailed) as caught:
        parse_status_form(api_requests.form_fields(request), None, 500)
    assert name in caught.value.message


def test_empty_unsupported_fields_from_json_clients_are_no_fields():
    body = {"status": "hello", "media_ids": [], "poll": None, "scheduled_at": ""}
    request = chalice_request({"content-type": "application/json"}, json.dumps(body).encode())

    assert parse_status_form(api_requests.form_fields(request), None, 500).text == "hello"


# -- following_accounts.csv ----------------------------------------------------------------

csv_chars = st.sampled_from([",", '"', "\r", "\n", "\r\n", "@", " ", "a", "b", "\x00", "true", "en", "é"]) | any_char
csv_texts = st.one_of(
    st.lists(csv_chars, max_size=60).map("".join),
    st.lists(csv_chars, max_size=60).map(lambda chars: "Account address,Show boosts\r" + "".join(chars)),
)


@bounded(400)
@given(csv_texts)
@example("Account address\rbob\r")
@example("Account address\n" + "x" * 200_000)
def test_a_following_csv_is_rows_or_a_validation_failure(text):
    codes = {"invalid_csv", "too_many_rows"}
    rows = parsed_or_refused(parse_following_csv, text, "example.social", refusal=errors.ValidationFailed, codes=codes)

    if rows is not REFUSED:
        assert len(rows) <= MAX_IMPORT_ROWS
        assert all(row.username is None or isinstance(row.username, str) for row in rows)


account_cells = st.lists(
    st.tuples(st.from_regex(r"[a-z0-9_]{1,10}", fullmatch=True), st.sampled_from(["true", "false"])),
    min_size=1,
    max_size=8,
)


@bounded(100)
@given(account_cells)
def test_a_bare_cr_ends_a_line_as_lf_and_crlf_do(accounts):
    lines = ["Account address,Show boosts", *(f"{name}@example.social,{boosts}" for name, boosts in accounts)]
    by_ending = {ending: parse_following_csv(ending.join(lines) + ending, "example.social") for ending in "\n\r"}
    by_ending["\r\n"] = parse_following_csv("\r\n".join(lines), "example.social")

    assert by_ending["\r"] == by_ending["\n"] == by_ending["\r\n"]
    assert [(row.username, row.follow_options["show_reblogs"]) for row in by_ending["\r"]] == [
        (name, boosts == "true") for name, boosts in accounts
    ]


def test_a_field_over_the_csv_modules_limit_is_invalid_csv():
    with pytest.raises(errors.ValidationFailed) as caught:
        parse_following_csv("Account address\n" + "x" * 200_000, "")
    assert caught.value.code == "invalid_csv"


# -- the error map ---------------------------------------------------------------------------


class _SubclassOfASubclass(errors.NotFound):
    pass


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def _every_error() -> list[errors.LifeboatError]:
    made = []
    for cls in [errors.LifeboatError, *_subclasses(errors.LifeboatError)]:
        if cls is errors.FollowLimitReached:
            made.append(cls(7500))
            continue
        retry = {"retry_after": 3} if issubclass(cls, errors.RetryLater) else {}
        made.append(cls("something", **retry))
    return made


def test_a_plain_lifeboat_error_is_a_400_not_a_crash():
    response = api_errors.error_response(errors.LifeboatError("something went wrong with the input"))

    assert response.status_code == 400
    assert response.body == {"error": "error", "message": "something went wrong with the input"}


@pytest.mark.parametrize("error", _every_error(), ids=lambda error: type(error).__name__)
def test_every_domain_error_maps_to_a_4xx_or_a_503_in_json(error):
    response = api_errors.error_response(error)

    assert 400 <= response.status_code < 500 or response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.body) == {"error", "message"}


def test_the_most_specific_class_decides_the_status():
    assert api_errors.error_response(_SubclassOfASubclass("gone")).status_code == 404
