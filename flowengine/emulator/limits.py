"""Token buckets: per-user code and send limits, per-session polling, global rate limits.

Buckets refill continuously; time comes from the caller (the emulator's clock), so tests
move a :class:`~flowengine.clock.ManualClock` instead of sleeping. A :class:`BucketMap`
holds one bucket per key and forgets full ones on :meth:`BucketMap.sweep`, so it stays
bounded by the number of keys that spent something recently.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

from flowengine.emulator.config import BucketLimit

__all__ = ["BucketMap", "RateLimitHeaders", "TokenBucket", "rate_limit_headers"]

RateLimitHeaders = dict[str, str]


class TokenBucket:
    """``burst`` tokens, one more every ``refill_every`` seconds."""

    __slots__ = ("burst", "refill_every", "tokens", "updated")

    def __init__(self, limit: BucketLimit, now: float) -> None:
        self.burst = limit.burst
        self.refill_every = limit.refill_every
        self.tokens = float(limit.burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.refill_every)
        self.updated = now

    def available(self, now: float) -> bool:
        """Whether one token can be taken now (takes nothing)."""
        self._refill(now)
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        """Take one token; False (and nothing taken) when the bucket is empty."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def remaining(self, now: float) -> int:
        """Whole tokens left."""
        self._refill(now)
        return int(self.tokens)

    def full_at(self, now: float) -> float:
        """When the bucket will be full again."""
        self._refill(now)
        return now + (self.burst - self.tokens) * self.refill_every

    def next_at(self, now: float) -> float:
        """When the next token will be available."""
        self._refill(now)
        return now if self.tokens >= 1.0 else now + (1.0 - self.tokens) * self.refill_every

    def is_full(self, now: float) -> bool:
        """Whether the bucket has refilled completely."""
        self._refill(now)
        return self.tokens >= self.burst


class BucketMap:
    """One :class:`TokenBucket` per key, created full on first use."""

    __slots__ = ("_buckets", "limit")

    def __init__(self, limit: BucketLimit) -> None:
        self.limit = limit
        self._buckets: dict[Hashable, TokenBucket] = {}

    def get(self, key: Hashable, now: float) -> TokenBucket:
        """The bucket of ``key``."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.limit, now)
        return bucket

    def available(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` may spend one token now."""
        bucket = self._buckets.get(key)
        return bucket is None or bucket.available(now)

    def take(self, key: Hashable, now: float) -> bool:
        """Spend one token of ``key``; False when empty."""
        return self.get(key, now).take(now)

    def reset(self, key: Hashable) -> None:
        """Forget ``key`` (its bucket is full again)."""
        self._buckets.pop(key, None)

    def sweep(self, now: float) -> int:
        """Drop full buckets; returns how many were dropped."""
        full = [key for key, bucket in self._buckets.items() if bucket.is_full(now)]
        for key in full:
            del self._buckets[key]
        return len(full)

    def __len__(self) -> int:
        return len(self._buckets)


def rate_limit_headers(bucket: TokenBucket, now: float, *, limited: bool) -> RateLimitHeaders:
    """``X-RateLimit-*`` headers (reset in epoch seconds), plus ``Retry-After`` on a 429."""
    headers = {
        "X-RateLimit-Limit": str(bucket.burst),
        "X-RateLimit-Remaining": str(bucket.remaining(now)),
        "X-RateLimit-Reset": str(math.ceil(bucket.full_at(now))),
    }
    if limited:
        headers["Retry-After"] = str(max(1, math.ceil(bucket.next_at(now) - now)))
    return headers
