"""Per-user command rate limits: a token bucket per account, in memory in the bot process.

A flood from one user is refused in microseconds, and answered once per refusal streak so the
refusals themselves do not flood the chat; other users are never slowed by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float
    refusing: bool = False


@dataclass(frozen=True)
class Refusal:
    retry_after_s: float
    first: bool  # the first refusal since the user was last allowed: the one worth answering


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str) -> Refusal | None:
        """Spend one token for `key`; a Refusal when none is left."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=self._burst, updated=now)
            self._forget_idle(now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.refusing = False
            return None
        first = not bucket.refusing
        bucket.refusing = True
        return Refusal((1 - bucket.tokens) / self._rate if self._rate else float("inf"), first)

    def _forget_idle(self, now: float) -> None:
        """Full buckets are the default state: drop them now and then, so memory stays bounded."""
        if len(self._buckets) % 1024 == 0:
            full_after = self._burst / self._rate if self._rate else float("inf")
            self._buckets = {key: bucket for key, bucket in self._buckets.items()
                             if now - bucket.updated < full_after}
