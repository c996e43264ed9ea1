"""An in-memory stand-in for `FollowStore`, the follow graph
(tests/functional/test_follow_store_contract.py holds it to the DynamoDB
adapter's behaviour).

Each answer is decided in the adapter's order: a follow that exists
already (or an unfollow of none) changes nothing and counts nothing, then
the cap, then the rate-limit charge. Charges are counted per user, kind and
minute, as the DynamoDB `RATE#` items count them (but only this store's).
"""

from __future__ import annotations

import threading
from collections import Counter

from chalicelib.accounts.rate_limits import Charge
from chalicelib.errors import FollowLimitReached
from chalicelib.mastodon.follows import Follow, FollowCounts

_WINDOW_SECONDS = 60


class InMemoryFollowStore:
    def __init__(self, max_following: int) -> None:
        self._max_following = max_following
        self._follows: dict[tuple[str, str], Follow] = {}
        self._charged: Counter[tuple[str, str, int]] = Counter()
        self._lock = threading.Lock()

    def follow(
        self, follow: Follow, created_at: str, charge: Charge | None = None, *, home_at_once: bool = False
    ) -> bool:
        # `home_at_once` is the home store's business (devtools/fakes/home.py).
        with self._lock:
            if (follow.follower, follow.followee) in self._follows:
                return False
            if len(self._following(follow.follower)) >= self._max_following:
                raise FollowLimitReached(self._max_following)
            self._charge(charge)
            self._follows[(follow.follower, follow.followee)] = follow
            return True

    def unfollow(
        self, follower: str, followee: str, charge: Charge | None = None, *, home_at_once: bool = False
    ) -> bool:
        with self._lock:
            if (follower, followee) not in self._follows:
                return False
            self._charge(charge)
            del self._follows[(follower, followee)]
            return True

    def get(self, follower: str, followee: str) -> Follow | None:
        with self._lock:
            return self._follows.get((follower, followee))

    def follows_back(self, follower: str, followee: str) -> bool:
        return self.get(followee, follower) is not None

    def following(self, follower: str, after: str | None = None, limit: int | None = None) -> list[str]:
        with self._lock:
            names = [name for name in self._following(follower) if not after or name > after]
        return names if limit is None else names[:limit]

    def counts(self, usernames: list[str]) -> dict[str, FollowCounts]:
        with self._lock:
            edges = list(self._follows)
        return {
            name: FollowCounts(
                following=sum(follower == name for follower, _ in edges),
                followers=sum(followee == name for _, followee in edges),
            )
            for name in usernames
        }

    def _following(self, follower: str) -> list[str]:
        return sorted(followee for who, followee in self._follows if who == follower)

    def _charge(self, charge: Charge | None) -> None:
        """Count the write in its window, or raise RateLimited when full."""
        if charge is None:
            return
        window = (charge.user, charge.limit.counter, charge.now // _WINDOW_SECONDS)
        if self._charged[window] >= charge.limit.per_minute:
            raise charge.refused()
        self._charged[window] += 1
