"""A first-come, first-served gate in front of the connection pool.

aiohttp's connector does not serve waiters in order: with 2,000 users on 100 connections,
1,900 of them never ran (measurements.md). Logins therefore queue here, in arrival order,
and hold at most one connection each once admitted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["FifoGate"]


class FifoGate:
    """At most ``limit`` holders at once; waiters are admitted strictly in arrival order."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"a gate needs a positive limit, got {limit}")
        self._limit = limit
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        """How many may hold the gate at once."""
        return self._limit

    @property
    def in_use(self) -> int:
        """How many hold the gate now."""
        return self._limit - self._free

    @property
    def waiting(self) -> int:
        """How many wait to be admitted."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def acquire(self) -> None:
        """Wait for a place; cancellation while waiting gives nothing up."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Admitted and cancelled in the same tick: pass the place on.
                self.release()
            else:
                self._remove(waiter)
            raise

    def release(self) -> None:
        """Give a place back, to the longest waiter if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if self._free >= self._limit:
            raise RuntimeError("FifoGate released more often than acquired")
        self._free += 1

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
