"""An in-memory stand-in for `UpstreamTokens`, the per-user tokens for a
Mastodon primary (tests/functional/test_upstream_tokens_contract.py holds it
to the DynamoDB + KMS adapter's behaviour). Nothing is encrypted: there is
no KMS here, and the tokens never leave the test process."""

from __future__ import annotations

import threading


class InMemoryUpstreamTokens:
    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def put(self, username: str, token: str) -> None:
        with self._lock:
            self._tokens[username] = token

    def delete(self, username: str) -> None:
        with self._lock:
            self._tokens.pop(username, None)

    def get(self, username: str) -> str | None:
        with self._lock:
            return self._tokens.get(username)
