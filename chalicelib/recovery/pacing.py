"""Pacing the replay: a rate gate that follows the primary's rate-limit
headers and Retry-After, and a circuit that stops a run against a failing
primary. Both are shared by the run's sending threads, and run on the
clock and sleep they are given."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.upstream.port import RateLimit

# The lightest pace the rate-limit headers can push us down to.
MIN_RPS = 0.5
# Pace at this fraction of the primary's stated limit: room for the clocks
# of two machines disagreeing about where a window starts.
PACE_HEADROOM = 0.95
MIN_WINDOW_SECONDS = 0.05


class RateGate:
    """Spaces sends to at most `max_rps`, slower when the primary's
    X-RateLimit headers say so, and not at all while it asked us to wait
    (Retry-After). Shared by every sending thread."""

    def __init__(self, max_rps: float, clock=time.monotonic, sleep=time.sleep) -> None:
        self._max_rps = max_rps
        self._interval = 1.0 / max_rps
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._paused_until = 0.0
        self._window = 0.0

    def wait_turn(self, give_up_at: float) -> bool:
        """Block until this caller may send; False (without a turn) if that
        would be after `give_up_at`."""
        with self._lock:
            now = self._clock()
            at = max(now, self._next_at, self._paused_until)
            if at > give_up_at:
                return False
            self._next_at = at + self._interval
        if at > now:
            self._sleep(at - now)
        return True

    def pause_for(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, rate_limit: RateLimit | None, in_flight: int) -> None:
        """Follow the primary's rate-limit headers.

        With X-RateLimit-Limit, pace evenly at (a little under) the limit
        per window, the window being the longest reset time seen: an even
        pace never exhausts a window, whereas spending the budget as it
        remains goes wrong when Reset is rounded to whole seconds; wait for
        the reset only once the window is spent. Without a stated limit,
        spread what remains (less what is in flight) over the time left,
        and wait for the reset when nothing remains.
        """
        if rate_limit is None or rate_limit.reset_after_seconds is None:
            return
        reset = rate_limit.reset_after_seconds
        with self._lock:
            self._window = max(self._window, reset)
            if rate_limit.limit:
                rps = PACE_HEADROOM * rate_limit.limit / max(self._window, MIN_WINDOW_SECONDS)
                spare = rate_limit.remaining
            elif rate_limit.remaining is not None:
                spare = rate_limit.remaining - in_flight
                rps = spare / max(reset, MIN_WINDOW_SECONDS)
            else:
                return
            self._interval = 1.0 / min(self._max_rps, max(MIN_RPS, rps))
        if spare is not None and spare <= 0:
            self.pause_for(reset)


class Circuit:
    """Opens after `threshold` consecutive failed sends; any success closes
    the streak. Once open, it stays open for the rest of the run."""

    def __init__(self, threshold: int) -> None:
        self._threshold = threshold
        self._streak = 0
        self._open = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._open

    def record(self, success: bool) -> None:
        with self._lock:
            self._streak = 0 if success else self._streak + 1
            self._open = self._open or self._streak >= self._threshold
