"""Time as a dependency: the system clock, and a manual clock that tests drive.

The emulator and the engine read time only through a :class:`Clock`, so every expiry and
every limit can be tested by moving a :class:`ManualClock` instead of sleeping. An
:class:`OffsetClock` is real time that can be moved forward (the emulator's
``POST /_emulator/clock/advance``, e.g. to let an ``mfa_token`` expire without waiting).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "OffsetClock", "SystemClock"]


class Clock(Protocol):
    """What flowengine needs to know about time."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (token ``iat``/``exp``, TOTP windows)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (latencies, deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._mono = 0.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


class OffsetClock:
    """Another clock (the system's by default) whose wall time can be moved forward.

    Only :meth:`time` moves: latencies and sleeps (:meth:`monotonic`, :meth:`sleep`) stay
    real, so a jump never makes a request look slow.
    """

    def __init__(self, base: Clock | None = None) -> None:
        self._base: Clock = base if base is not None else SystemClock()
        self._offset = 0.0

    @property
    def offset(self) -> float:
        """Seconds this clock is ahead of its base."""
        return self._offset

    def time(self) -> float:
        return self._base.time() + self._offset

    def monotonic(self) -> float:
        return self._base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)

    def advance(self, seconds: float) -> None:
        """Move wall time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._offset += seconds

    def catch_up(self, now: float) -> None:
        """Move forward (never back) so that :meth:`time` is at least ``now``."""
        self._offset = max(self._offset, now - self._base.time())
