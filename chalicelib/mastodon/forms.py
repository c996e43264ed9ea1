"""Parsing of what Mastodon clients send: the form (or JSON) of a new
status, and the flags of a query string.

Pure: values in, a NewPost or a ValidationFailed (422) out.
"""

from __future__ import annotations

import re

from chalicelib.core.models import NewPost, normalise_text, parse_idempotency_key
from chalicelib.core.parsing import flag
from chalicelib.errors import ValidationFailed

# Fields Mastodon accepts that Lifeboat cannot honour: refused, never dropped.
UNSUPPORTED_STATUS_FIELDS = ("media_ids", "poll", "scheduled_at", "quoted_status_id", "quote_id", "media_attributes")
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}")


def parse_status_form(form: dict[str, list[str]], idempotency_key: str | None, max_chars: int) -> NewPost:
    """The fields of `POST /api/v1/statuses`, form or JSON, as a NewPost.

    Raises ValidationFailed (422) for what Lifeboat cannot store: media,
    polls, scheduling, quotes, and visibility other than public (every
    Lifeboat post is public and replayed as such). Fields Mastodon does not
    know are ignored, as Mastodon does, and so are empty ones: JSON clients
    send `"media_ids": []` or `"poll": null` for none.
    """
    names = {name.removesuffix("[]").split("[", 1)[0] for name, values in form.items() if _given(values)}
    unsupported = sorted(names & set(UNSUPPORTED_STATUS_FIELDS))
    if unsupported:
        raise ValidationFailed(
            f"Validation failed: {', '.join(unsupported)} not supported by this server", code="unsupported_field"
        )
    visibility = form_value(form, "visibility") or "public"
    if visibility != "public":
        raise ValidationFailed(
            f"Validation failed: visibility {visibility!r} not supported; only public posts are kept",
            code="unsupported_visibility",
        )
    language = form_value(form, "language") or None
    if language is not None and not _LANGUAGE_RE.fullmatch(language):
        raise ValidationFailed("Validation failed: language must be an ISO 639 code", code="invalid_language")
    spoiler = (form_value(form, "spoiler_text") or "").strip()
    text = form_value(form, "status")
    if text is None or not text.strip():
        raise ValidationFailed("Validation failed: Text can't be blank", code="empty_text")
    text = normalise_text(text, max(1, max_chars - len(spoiler)))
    if spoiler:
        normalise_text(spoiler, max_chars)
    return NewPost(
        text=text,
        in_reply_to=None,
        idempotency_key=parse_idempotency_key(idempotency_key),
        spoiler_text=spoiler,
        language=language,
    )


def _given(values: list) -> bool:
    return any(value not in (None, "", [], {}) for value in values)


def form_value(form: dict[str, list[str]], name: str) -> str | None:
    """The field's last value as text; None when absent. A JSON object or
    nested list is refused, not turned into its Python repr."""
    values = form.get(name)
    if not values:
        return None
    value = values[-1]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, dict | list):
        raise ValidationFailed(f"Validation failed: {name} must be text", code="invalid_field")
    return str(value)


def is_true(form: dict[str, list[str]], name: str) -> bool:
    return flag(form_value(form, name), lenient=True)


def query_flag(params: dict[str, str], name: str) -> bool:
    """A boolean query parameter, read as Mastodon reads it; absent is false."""
    return flag(params.get(name), lenient=True)
