"""Keeping secrets out of what we record: a primary may echo our request,
token included, into an error body that becomes a log line or a dead letter."""

from __future__ import annotations

REDACTED = "[redacted]"


def redacted(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` replaced by REDACTED."""
    return text.replace(secret, REDACTED)
