"""`Mirror`: one run over the primary's change feed, within a time budget.

Pages are read from the stored cursor; each change is parsed (a malformed
one is skipped, logged and counted), then applied by kind: accounts first
(a page's posts and tokens may name them), then credentials, follows and
posts. The cursor moves only after a page is applied, so a run that dies
repeats the page, which changes nothing. Waits and failures:
- 429/503: wait its Retry-After if the budget allows, else end the run
  (at most TRANSIENT_RETRIES waits and back-offs together);
- transient (5xx, no answer, a truncated page): back off, a few times;
- 401: stop, record the error and count `MirrorUnauthorized` (the alarm).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from chalicelib.core import ids
from chalicelib.core.clock import iso_at
from chalicelib.mirror.changes import (
    AccountChange,
    CredentialChange,
    FollowChange,
    MalformedChange,
    PostChange,
    parse_change,
)
from chalicelib.mirror.state import MirrorState, Progress
from chalicelib.mirror.store import PostsApplied
from chalicelib.observability import count, logger
from chalicelib.upstream.port import FeedAnswer, FeedOutcome

PAGE_SIZE = 500
TRANSIENT_RETRIES = 3
BACKOFF_SECONDS = 0.5
# A run stops asking for pages this long before its budget ends.
MARGIN_SECONDS = 3.0
# Replays are looked for in the feed from this long before the run that
# sent them (the primary's clock may be behind ours)...
REPLAY_CLOCK_SKEW_SECONDS = 300
# ...and until this long after the last send, past any feed delay.
REPLAY_SETTLE_SECONDS = 600


class ChangeFeed(Protocol):
    def fetch(self, after: str | None, limit: int) -> FeedAnswer: ...


class MirrorWrites(Protocol):
    """What the mirror writes through (mirror.store, or its fake)."""

    def apply_account(self, change: AccountChange) -> bool: ...

    def apply_credentials(self, changes: list[CredentialChange]) -> int: ...

    def apply_follow(self, change: FollowChange, created_at: str) -> bool: ...

    def apply_posts(
        self, changes: list[PostChange], retention_days: int, *, check_ours: bool = True
    ) -> PostsApplied: ...


class StateStore(Protocol):
    def load(self) -> MirrorState: ...

    def record(self, progress: Progress) -> None: ...

    def record_error(self, error: str) -> None: ...

    def note_outage(self, began_at: str) -> None: ...

    def note_replay(self, since: str, replayed_at: str) -> None: ...

    def outage_over(self) -> None: ...


@dataclass
class MirrorReport:
    pages: int = 0
    changes: int = 0
    malformed: int = 0
    accounts: int = 0
    credentials: int = 0
    follows: int = 0
    posts: int = 0
    posts_deleted: int = 0
    posts_ours: int = 0
    reached_end: bool = False
    stop: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class Mirror:
    def __init__(
        self,
        feed: ChangeFeed,
        writes: MirrorWrites,
        state: StateStore,
        retention_days: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._feed = feed
        self._applier = ChangeApplier(writes, retention_days, clock)
        self._state = state
        self._clock = clock
        self._sleep = sleep
        self._page_size = page_size

    def note_outage(self) -> None:
        """The primary is not up: posts created on it from now on may be
        our own replays, which the mirror must recognise."""
        self._state.note_outage(iso_at(self._clock()))

    def note_replay(self, started_at: float) -> None:
        """The replay sent posts in a run that started at `started_at`
        (epoch seconds), whether the primary was thought down or not (a
        client may post here while it is up): the primary may show them in
        its feed from then on, give or take the two clocks' skew."""
        self._state.note_replay(iso_at(started_at - REPLAY_CLOCK_SKEW_SECONDS), iso_at(self._clock()))

    def run(self, time_left: Callable[[], float], backlog_empty: Callable[[], bool] = lambda: True) -> MirrorReport:
        report = MirrorReport()
        state = self._state.load()
        cursor, outage_began_at = state.cursor, state.outage_began_at
        # Checked before the first page: if the backlog was empty then, no
        # replay can land after this run's end of the feed.
        settled = outage_began_at is not None and self._replay_settled(state) and backlog_empty()
        failures = 0
        while time_left() > MARGIN_SECONDS:
            answer = self._feed.fetch(cursor, self._page_size)
            if answer.outcome == FeedOutcome.UNAUTHORIZED:
                logger.error("mirror: the primary refused our token", extra={"detail": answer.detail})
                count("MirrorUnauthorized")
                self._state.record_error("unauthorized: the primary refused UPSTREAM_TOKEN")
                report.stop = "unauthorized"
                return report
            if answer.outcome == FeedOutcome.RETRY_AFTER:
                # Waits count with failures: a primary that keeps asking us
                # to wait (it is going down) ends the run, not its budget.
                failures += 1
                if failures > TRANSIENT_RETRIES or answer.retry_after_seconds >= time_left() - MARGIN_SECONDS:
                    report.stop = "retry_after"
                    return report
                self._sleep(answer.retry_after_seconds)
                continue
            if answer.outcome == FeedOutcome.TRANSIENT:
                failures += 1
                if failures > TRANSIENT_RETRIES:
                    self._state.record_error(f"transient: {answer.detail}")
                    report.stop = "transient"
                    return report
                self._sleep(min(BACKOFF_SECONDS * 2 ** (failures - 1), max(0.0, time_left() - MARGIN_SECONDS)))
                continue
            failures = 0
            progress = self._apply_page(answer, outage_began_at, report)
            self._state.record(progress)
            cursor = answer.next
            report.pages += 1
            if not answer.more:
                report.reached_end = True
                if settled:
                    self._state.outage_over()
                report.stop = "end"
                return report
        report.stop = "budget"
        return report

    def _replay_settled(self, state: MirrorState) -> bool:
        """Long enough since the replay last sent for the primary's feed to
        show what it sent (a Mastodon feed holds back its newest posts)."""
        if state.last_replay_at is None:
            return True
        return self._clock() - ids.millis_from_iso(state.last_replay_at) / 1000 > REPLAY_SETTLE_SECONDS

    def _apply_page(self, answer: FeedAnswer, outage_began_at: str | None, report: MirrorReport) -> Progress:
        applied = self._applier.apply(answer.changes, outage_began_at, report)
        return replace(applied, cursor=answer.next, reached_end_at=None if answer.more else iso_at(self._clock()))


class ChangeApplier:
    """Applies a batch of change documents through MirrorWrites: the feed's
    pages and the S3 inbox's batches alike (mirror/inbox.py)."""

    def __init__(self, writes: MirrorWrites, retention_days: int, clock: Callable[[], float] = time.time) -> None:
        self._writes = writes
        self._retention_days = retention_days
        self._clock = clock

    def apply(
        self,
        documents: Sequence[object],
        outage_began_at: str | None,
        report: MirrorReport,
        where: Callable[[int], dict] = lambda _: {},
    ) -> Progress:
        """Parse and apply `documents` by kind; a malformed one (or a
        MalformedChange in its place: a line the inbox could not decode) is
        skipped, logged with `where(index)` and counted. The Progress has
        no cursor: the caller knows where the batch came from."""
        parsed = {AccountChange: [], CredentialChange: [], FollowChange: [], PostChange: []}
        malformed = 0
        for index, document in enumerate(documents):
            try:
                if isinstance(document, MalformedChange):
                    raise document
                change = parse_change(document)
            except MalformedChange as bad:
                malformed += 1
                logger.warning("mirror: malformed change skipped", extra={"reason": bad.reason, **where(index)})
                continue
            parsed[type(change)].append(change)
        if malformed:
            count("MirrorMalformedChanges", malformed)
        now = iso_at(self._clock())
        new_accounts = sum(self._writes.apply_account(change) for change in parsed[AccountChange])
        self._writes.apply_credentials(parsed[CredentialChange])
        follows = sum(self._writes.apply_follow(change, now) for change in parsed[FollowChange])
        posts = self._apply_posts(parsed[PostChange], outage_began_at)
        report.changes += len(documents)
        report.malformed += malformed
        report.accounts += len(parsed[AccountChange])
        report.credentials += len(parsed[CredentialChange])
        report.follows += len(parsed[FollowChange])
        report.posts += posts.stored
        report.posts_deleted += posts.deleted
        report.posts_ours += posts.ours
        return Progress(
            cursor=None,
            accounts=new_accounts,
            posts=posts.stored - posts.deleted,
            malformed=malformed,
            changed=bool(posts.stored or posts.deleted or follows or parsed[AccountChange]),
        )

    def _apply_posts(self, changes: list[PostChange], outage_began_at: str | None) -> PostsApplied:
        """Only posts created on the primary since an outage began can be
        replays of ours: only they are checked against the replay marks."""
        if outage_began_at is None:
            return self._writes.apply_posts(changes, self._retention_days, check_ours=False)
        older = [change for change in changes if change.created_at < outage_began_at]
        newer = [change for change in changes if change.created_at >= outage_began_at]
        first = self._writes.apply_posts(older, self._retention_days, check_ours=False)
        second = self._writes.apply_posts(newer, self._retention_days, check_ours=True)
        return PostsApplied(first.stored + second.stored, first.deleted + second.deleted, second.ours)


def lag_seconds(state: MirrorState, now: float) -> float | None:
    """Seconds since the mirror last reached the feed's end."""
    if state.cursor_at is None:
        return None
    return max(0.0, now - ids.millis_from_iso(state.cursor_at) / 1000)


def status_of(state: MirrorState, now: float) -> dict:
    """`/status`'s `mirror` object."""
    return {
        "cursor_at": state.cursor_at,
        "lag_seconds": lag_seconds(state, now),
        "accounts": state.accounts,
        "posts": max(0, state.posts),
        "malformed": state.malformed,
        "last_error": state.last_error,
    }
