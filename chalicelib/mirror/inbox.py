"""`Inbox`: the mirror protocol pushed instead of pulled. A primary that
cannot serve a change feed, or an operator with a bulk export
(scripts/mastodon_export.sql), writes change documents as JSON Lines
objects under `mirror/inbox/`; each maintenance run ingests them in key
order, within its time budget, and moves each one to `mirror/done/`.

- **Lines.** Each line is one change document, applied by the feed's own
  `ChangeApplier` in batches of `BATCH_LINES`. A line that is not JSON, not
  UTF-8, longer than `MAX_LINE_BYTES` or not a valid change is skipped,
  logged and counted as the feed's malformed changes are; blank lines are
  ignored.
- **Rejected objects.** An object larger than `MAX_OBJECT_BYTES`, or whose
  first non-blank line is not a JSON object (a gzip file, a CSV, one JSON
  array), is not JSON Lines: nothing of it is applied, and it moves to
  `mirror/rejected/` with a sibling `<name>.reason.json`.
- **Resuming.** After each batch the mirror state item records the
  object's byte offset of the next line (with its counts, one UpdateItem),
  so an object too big for one run continues where the last one stopped; a
  replaced object (another ETag) starts over.
- **Once.** An object whose move failed after its changes were applied is
  applied again by a later run: harmless, every change is a state.

Pure over its ports: the bucket (mirror/inbox_bucket.py, or its fake) and
the mirror's state store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from chalicelib.core.clock import iso_at
from chalicelib.errors import StoreUnavailable
from chalicelib.mirror.changes import MalformedChange
from chalicelib.mirror.service import MARGIN_SECONDS, ChangeApplier, MirrorReport, MirrorWrites, StateStore
from chalicelib.mirror.state import InboxPosition
from chalicelib.observability import count, logger

INBOX_PREFIX = "mirror/inbox/"
DONE_PREFIX = "mirror/done/"
REJECTED_PREFIX = "mirror/rejected/"
REASON_SUFFIX = ".reason.json"
BATCH_LINES = 500
# Objects listed per run: a run rarely gets through more.
LIST_LIMIT = 100
# The export of a primary with a million users is about 800 MB (78 MB per
# 100,000 users and their tokens, docs/DESIGN.md): 1 GiB takes it, and
# anything larger is far more likely a wrong file (a database dump).
MAX_OBJECT_BYTES = 1 << 30
# A post of 5,000 characters, each escaped as \\uXXXX\\uXXXX, fits.
MAX_LINE_BYTES = 128 << 10
_BOM = "\ufeff"


@dataclass(frozen=True)
class InboxObject:
    key: str
    size: int
    etag: str

    @property
    def name(self) -> str:
        """The key under the inbox; the same name under done/ or rejected/."""
        return self.key.removeprefix(INBOX_PREFIX)


class ObjectChanged(Exception):
    """The object is not the version listed (replaced or removed since)."""


class InboxBucket(Protocol):
    def list(self, limit: int) -> list[InboxObject]: ...

    def chunks(self, obj: InboxObject, offset: int) -> Iterator[bytes]: ...

    def move_to_done(self, obj: InboxObject) -> bool: ...

    def reject(self, obj: InboxObject, reason: dict) -> None: ...


class InboxStateStore(StateStore, Protocol):
    def record(self, progress, inbox: InboxPosition | None = None) -> None: ...

    def inbox_done(self) -> None: ...


@dataclass
class InboxReport(MirrorReport):
    objects: int = 0
    rejected: int = 0
    lines: int = 0

    def to_dict(self) -> dict:
        values = super().to_dict()
        # A feed's words: an inbox has batches and objects, no pages or end.
        for name in ("pages", "reached_end"):
            values.pop(name)
        return values


def split_lines(chunks: Iterable[bytes], offset: int) -> Iterator[tuple[bytes | None, int]]:
    """The lines of a byte stream that starts at `offset`, without their
    line break, each with the offset just after it. A line longer than
    MAX_LINE_BYTES is None, and never held whole in memory."""
    pending = bytearray()
    too_long = False
    for chunk in chunks:
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            offset += newline + 1 - start
            too_long = too_long or len(pending) + newline - start > MAX_LINE_BYTES
            yield (None if too_long else bytes(pending + chunk[start:newline])), offset
            pending.clear()
            too_long = False
            start = newline + 1
        offset += len(chunk) - start
        if not too_long:
            pending += chunk[start:]
            if len(pending) > MAX_LINE_BYTES:
                too_long = True
                pending.clear()
    if pending or too_long:
        yield (None if too_long else bytes(pending)), offset


def decode_line(raw: bytes | None) -> object | None:
    """A line as its JSON value, None if blank, or a MalformedChange."""
    if raw is None:
        return MalformedChange(f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError:
        return MalformedChange("line is not UTF-8")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return MalformedChange("line is not JSON")


def not_json_lines(first: object) -> str | None:
    """Why an object whose first non-blank line is `first` is not JSON
    Lines of change documents, or None if it is."""
    if isinstance(first, MalformedChange):
        return f"not JSON Lines: its first {first.reason}"
    if not isinstance(first, dict):
        return "not JSON Lines: its first line is not a JSON object"
    return None


class Inbox:
    def __init__(
        self,
        bucket: InboxBucket,
        writes: MirrorWrites,
        state: InboxStateStore,
        retention_days: int,
        clock: Callable[[], float] = time.time,
        batch_lines: int = BATCH_LINES,
    ) -> None:
        self._bucket = bucket
        self._applier = ChangeApplier(writes, retention_days, clock)
        self._state = state
        self._clock = clock
        self._batch_lines = batch_lines

    def note_outage(self) -> None:
        """As Mirror.note_outage, for a stack with an inbox and no feed.
        Only a feed's end clears the mark: without one, inbox posts created
        since stay checked against the replay marks (0.01 requests each)."""
        self._state.note_outage(iso_at(self._clock()))

    def run(self, time_left: Callable[[], float]) -> InboxReport:
        report = InboxReport()
        try:
            state = self._state.load()
            listed = self._bucket.list(LIST_LIMIT)
            for obj in listed:
                if time_left() <= MARGIN_SECONDS:
                    report.stop = "budget"
                    return report
                position = state.inbox
                if position is not None and (position.key, position.etag) != (obj.key, obj.etag):
                    position = None
                if not self._ingest(obj, position, state.outage_began_at, time_left, report):
                    return report
        except StoreUnavailable as exc:
            # The next run resumes from the last batch recorded.
            logger.warning("mirror inbox: storage unavailable", extra={"error": str(exc)})
            report.stop = "unavailable"
            return report
        # A full listing may have left keys for the next run.
        report.stop = "listed" if len(listed) == LIST_LIMIT else "empty"
        return report

    def _ingest(
        self,
        obj: InboxObject,
        position: InboxPosition | None,
        outage_began_at: str | None,
        time_left: Callable[[], float],
        report: InboxReport,
    ) -> bool:
        """Apply what is left of one object and move it; False if the run
        must end here (the budget, or the object changed under us)."""
        if obj.size > MAX_OBJECT_BYTES:
            self._reject(obj, f"larger than {MAX_OBJECT_BYTES} bytes", 0, report)
            return True
        offset, line = (position.offset, position.line) if position else (0, 0)
        judged = position is not None  # its first line was read before
        recorded = position is not None
        batch: list[object] = []
        numbers: list[int] = []  # each document's line, for the log
        try:
            for raw, end in split_lines(self._bucket.chunks(obj, offset), offset):
                line += 1
                document = decode_line(raw)
                if document is None:
                    continue
                if not judged:
                    reason = not_json_lines(document)
                    if reason:
                        self._reject(obj, reason, line, report)
                        return True
                    judged = True
                batch.append(document)
                numbers.append(line)
                if len(batch) >= self._batch_lines:
                    position_after = InboxPosition(obj.key, obj.etag, end, line)
                    self._apply(obj, batch, numbers, position_after, outage_began_at, report)
                    recorded = True
                    batch, numbers = [], []
                    if time_left() <= MARGIN_SECONDS:
                        report.stop = "budget"
                        return False
        except ObjectChanged:
            logger.warning("mirror inbox: object replaced while read", extra={"key": obj.key})
            report.stop = "changed"
            return False
        if batch:
            # The object's last batch needs no position: if the move below
            # fails, the next run repeats this batch, which changes nothing.
            self._apply(obj, batch, numbers, None, outage_began_at, report)
        report.lines += line - (position.line if position else 0)
        self._finish(obj, recorded, report)
        return True

    def _apply(
        self,
        obj: InboxObject,
        batch: list[object],
        numbers: list[int],
        position: InboxPosition | None,
        outage_began_at: str | None,
        report: InboxReport,
    ) -> None:
        """One batch applied, then its counts (and `position`, if the
        object goes on) recorded in one UpdateItem."""
        where = lambda index: {"object": obj.key, "line": numbers[index]}  # noqa: E731 - read when logging
        progress = self._applier.apply(batch, outage_began_at, report, where)
        report.pages += 1
        self._state.record(progress, position)

    def _finish(self, obj: InboxObject, recorded: bool, report: InboxReport) -> None:
        if self._bucket.move_to_done(obj):
            report.objects += 1
            count("MirrorInboxObjects")
        else:
            logger.warning("mirror inbox: object replaced before its move; read again next run", extra={"key": obj.key})
        if recorded:
            self._state.inbox_done()

    def _reject(self, obj: InboxObject, reason: str, line: int, report: InboxReport) -> None:
        logger.error("mirror inbox: object rejected", extra={"key": obj.key, "reason": reason})
        count("MirrorInboxRejected")
        self._bucket.reject(
            obj, {"reason": reason, "line": line, "size": obj.size, "etag": obj.etag, "at": iso_at(self._clock())}
        )
        report.rejected += 1
