"""Run the same callable on many threads released at once, for race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_at_once(action: Callable[[], T], threads: int) -> list[T]:
    """Start `threads` threads that all call `action` together (a barrier
    releases them at once) and return their results. An exception in any
    thread is re-raised here after all have finished."""
    start = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        start.wait()
        try:
            result = action()
        except BaseException as exc:  # handed back to the test below
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return results
