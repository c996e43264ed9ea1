"""Domain objects and input validation. Pure: no AWS, no HTTP."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, replace

from chalicelib.core import ids
from chalicelib.errors import BadRequest, ValidationFailed

PENDING = "pending"
SENDING = "sending"
REPLAYED = "replayed"
FAILED = "failed"
DELETED = "deleted"
# A post of the primary kept by the warm standby's mirror: never replayed.
MIRRORED = "mirrored"
# A replayed post deleted here: its copy on the primary is to be deleted
# (delete_pending), is being deleted by a replay run (deleting), or the
# primary refused that for good (delete_failed, a dead letter). For readers
# all three are deleted, like `deleted`; docs/DESIGN.md has the whole machine.
DELETE_PENDING = "delete_pending"
DELETING = "deleting"
DELETE_FAILED = "delete_failed"
GONE_STATES = frozenset({DELETED, DELETE_PENDING, DELETING, DELETE_FAILED})
UPSTREAM_DELETE_STATES = frozenset({DELETE_PENDING, DELETING})
DEAD_LETTER_STATES = frozenset({FAILED, DELETE_FAILED})

# Matched whole (fullmatch): `^...$` would let "alice\n" through.
USERNAME_RE = re.compile(r"[a-z0-9_]{1,30}")
# Characters XML 1.0 forbids (C0 controls but tab/newline, lone surrogates,
# U+FFFE/U+FFFF), DEL and the C1 controls: any of them would break a feed.
_FORBIDDEN_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
_POST_FIELDS = frozenset({"text", "in_reply_to"})


@dataclass(frozen=True)
class Post:
    id: str
    author: str
    text: str
    created_at: str
    in_reply_to: str | None = None
    state: str = PENDING
    upstream_id: str | None = None
    idempotency_key: str | None = None
    deleted_at: str | None = None
    replayed_at: str | None = None
    # When the primary confirmed the delete of its copy.
    upstream_deleted_at: str | None = None
    # Replay bookkeeping: which run holds the post while `sending`, how many
    # times it was handed to the primary, and why it was dead-lettered.
    replay_owner: str | None = None
    send_attempts: int = 0
    failure_reason: str | None = None
    failed_at: str | None = None
    # "api" for posts written straight to DynamoDB, "spool" for posts that
    # went through the S3 spool while DynamoDB refused writes.
    source: str = "api"
    # Mastodon API extras: a content warning and an ISO 639 language code.
    spoiler_text: str = ""
    language: str | None = None

    @property
    def is_deleted(self) -> bool:
        """Deleted here (whatever is left to do upstream): readers get 404."""
        return self.state in GONE_STATES

    @property
    def is_dead_letter(self) -> bool:
        """Refused for good by the primary (its send, or its delete there)."""
        return self.state in DEAD_LETTER_STATES

    @property
    def awaits_upstream_delete(self) -> bool:
        """The replay's work for this post is a delete on the primary."""
        return self.state in UPSTREAM_DELETE_STATES

    def to_public(self) -> dict:
        """The post as the API shows it: no internal bookkeeping fields."""
        return {
            "id": self.id,
            "author": self.author,
            "text": self.text,
            "created_at": self.created_at,
            "in_reply_to": self.in_reply_to,
            "state": self.state,
            "upstream_id": self.upstream_id,
        }

    def to_admin(self) -> dict:
        """The post as operators see it: where it stands in every state,
        deleted ones included (a delete on the primary is queued work)."""
        return {
            **self.to_public(),
            "source": self.source,
            "replayed_at": self.replayed_at,
            "deleted_at": self.deleted_at,
            "upstream_deleted_at": self.upstream_deleted_at,
            "send_attempts": self.send_attempts,
            "failure_reason": self.failure_reason,
            "failed_at": self.failed_at,
        }

    def to_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> Post:
        known = {name: record.get(name) for name in cls.__dataclass_fields__ if name in record}
        return cls(**known)

    def with_changes(self, **changes) -> Post:
        return replace(self, **changes)


@dataclass(frozen=True)
class NewPost:
    """A validated post request, before it has an id."""

    text: str
    in_reply_to: str | None
    idempotency_key: str | None
    spoiler_text: str = ""
    language: str | None = None

    @property
    def fingerprint(self) -> str:
        """What an idempotent retry must repeat exactly to get the same post."""
        material = f"{self.text}\x00{self.in_reply_to or ''}"
        if self.spoiler_text or self.language:
            material += f"\x00{self.spoiler_text}\x00{self.language or ''}"
        return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def normalise_text(text: object, max_chars: int) -> str:
    """Return the text as it will be stored, or raise ValidationFailed."""
    if not isinstance(text, str):
        raise ValidationFailed("text must be a string", code="invalid_text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValidationFailed("text must not be empty", code="empty_text")
    bad = _FORBIDDEN_CHARS_RE.search(text)
    if bad:
        raise ValidationFailed(
            f"text contains a forbidden character U+{ord(bad.group()):04X}", code="forbidden_character"
        )
    if len(text) > max_chars:
        raise ValidationFailed(f"text is {len(text)} characters long; the limit is {max_chars}", code="text_too_long")
    return text


def parse_new_post(body: object, idempotency_key: str | None, max_chars: int) -> NewPost:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_body")
    unknown = sorted(set(body) - _POST_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field")
    in_reply_to = body.get("in_reply_to")
    if in_reply_to is not None and not ids.is_ulid(in_reply_to):
        raise ValidationFailed("in_reply_to must be a post id", code="unknown_parent")
    return NewPost(
        text=normalise_text(body.get("text"), max_chars),
        in_reply_to=in_reply_to,
        idempotency_key=parse_idempotency_key(idempotency_key),
    )


def parse_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY_RE.fullmatch(raw):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters", code="invalid_idempotency_key")
    return raw


def is_username(text: object) -> bool:
    return isinstance(text, str) and USERNAME_RE.fullmatch(text) is not None


def validate_username(username: object) -> str:
    if not is_username(username):
        raise ValidationFailed("username must match [a-z0-9_]{1,30}", code="invalid_username")
    return username
