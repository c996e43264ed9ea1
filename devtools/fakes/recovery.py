"""In-memory stand-ins for the recovery job's other ports: the health item
(`recovery.health_store.HealthStore`) and the replay lease
(`aws.lease.Lease`). Each keeps its adapter's contract
(tests/functional/test_health_store_contract.py, test_lease.py)."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import replace

from chalicelib.recovery.health import HealthState


class InMemoryHealthStore:
    """One saved HealthState, written only over the version it was read at."""

    def __init__(self) -> None:
        self._saved: HealthState | None = None
        self._lock = threading.Lock()

    def load(self) -> HealthState:
        with self._lock:
            return copy.deepcopy(self._saved) if self._saved is not None else HealthState()

    def save(self, new: HealthState, expected_version: int) -> bool:
        with self._lock:
            # As the DynamoDB condition: version 0 means "no item yet".
            if expected_version == 0 and self._saved is not None:
                return False
            if expected_version != 0 and (self._saved is None or self._saved.version != expected_version):
                return False
            self._saved = replace(copy.deepcopy(new), version=expected_version + 1)
            return True

    def record_replay(self, report: dict) -> None:
        with self._lock:
            base = self._saved if self._saved is not None else HealthState()
            self._saved = replace(base, last_replay=copy.deepcopy(report))


class LeaseTable:
    """The lease rows, by name: what every `InMemoryLease` of a name shares,
    as every `Lease` of a name shares one DynamoDB item."""

    def __init__(self) -> None:
        self.holders: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()


class InMemoryLease:
    def __init__(self, table: LeaseTable, name: str, clock=time.time) -> None:
        self._table = table
        self._name = name
        self._clock = clock

    def acquire(self, owner: str, seconds: float) -> bool:
        now = self._clock()
        with self._table.lock:
            holder = self._table.holders.get(self._name)
            # Free, expired (its holder died), or already ours.
            if holder is not None and holder[0] != owner and holder[1] >= now:
                return False
            self._table.holders[self._name] = (owner, now + seconds)
            return True

    def release(self, owner: str) -> None:
        with self._table.lock:
            holder = self._table.holders.get(self._name)
            if holder is not None and holder[0] == owner:
                del self._table.holders[self._name]
