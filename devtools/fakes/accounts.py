"""An in-memory stand-in for `UserStore` (chalicelib/accounts/store.py):
users and their token hashes in dicts, with the same conflicts as the
DynamoDB transactions. tests/functional/test_user_store_contract.py runs one
suite against both. Thread-safe, like a table."""

from __future__ import annotations

import threading
from dataclasses import replace

from chalicelib.accounts.store import Grant, User
from chalicelib.errors import Conflict


class InMemoryUserStore:
    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._usernames_by_token: dict[str, str] = {}
        self._lock = threading.Lock()

    def create(self, user: User) -> None:
        with self._lock:
            if user.username in self._users:
                raise Conflict(f"user {user.username!r} already exists", code="username_taken")
            self._users[user.username] = user
            self._usernames_by_token[user.token_hash] = user.username

    def get(self, username: str) -> User | None:
        with self._lock:
            return self._users.get(username)

    def get_many(self, usernames: list[str]) -> dict[str, User]:
        with self._lock:
            return {name: self._users[name] for name in usernames if name in self._users}

    def username_for(self, hashed_token: str) -> str | None:
        with self._lock:
            return self._usernames_by_token.get(hashed_token)

    def grant_for(self, hashed_token: str) -> Grant | None:
        username = self.username_for(hashed_token)
        return Grant(username) if username else None

    def replace_token(self, user: User, new_hash: str | None, issued_at: str | None) -> None:
        with self._lock:
            stored = self._users.get(user.username)
            if stored is None or stored.token_hash != user.token_hash:
                raise Conflict("the token changed concurrently; try again", code="token_changed")
            self._users[user.username] = replace(
                stored, token_hash=new_hash, token_issued_at=issued_at if new_hash else None
            )
            self._usernames_by_token.pop(user.token_hash, None)
            if new_hash:
                self._usernames_by_token[new_hash] = user.username
