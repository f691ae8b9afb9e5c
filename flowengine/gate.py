"""What holds logins in flight: a first-come, first-served gate, and their deadlines.

aiohttp's connector does not serve waiters in order: with 2,000 users on 100 connections,
1,900 of them never ran (measurements.md). Logins therefore queue here, in arrival order,
and hold at most one connection each once admitted. :class:`Deadlines` bounds each login
in time as ``asyncio.timeout`` would, with one loop timer for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from types import TracebackType
from typing import Any

__all__ = ["Deadline", "Deadlines", "FifoGate"]


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

    def try_acquire(self) -> bool:
        """Take a place if one is free and nobody waits (no await); False otherwise."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

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


class Deadlines:
    """Time limits for many tasks at once, on one loop timer per distinct limit.

    ``async with deadlines.timeout(120):`` behaves as ``asyncio.timeout(120)`` (and so does
    a plain ``with``: entering and leaving never wait): when the
    limit passes, the task is cancelled, and the block raises :class:`TimeoutError` unless
    someone else cancelled the task too. But ``asyncio.timeout`` arms and cancels a loop
    timer per use (~5 µs of CPU per login, a libuv timer on uvloop), while logins almost
    always end long before their limit. Blocks with the same limit expire in the order
    they were entered, so each limit keeps its blocks in a queue, in that order, and one
    timer armed at the earliest deadline still open; a finished block is only marked, and
    dropped when the timer passes it (or when marked blocks outnumber open ones).
    """

    def __init__(self) -> None:
        self._queues: dict[float, _DeadlineQueue] = {}

    @property
    def open(self) -> int:
        """Blocks entered and not yet left."""
        return sum(queue.open for queue in self._queues.values())

    def timeout(self, limit: float) -> Deadline:
        """An async context manager that cancels its task ``limit`` seconds after entry."""
        queue = self._queues.get(limit)
        if queue is None:
            queue = self._queues[limit] = _DeadlineQueue(self, limit)
        return Deadline(queue)

    def _drop(self, queue: _DeadlineQueue) -> None:
        if self._queues.get(queue.limit) is queue:
            del self._queues[queue.limit]


class Deadline:
    """One ``async with`` block of :meth:`Deadlines.timeout` (use it once)."""

    __slots__ = ("_cancelling", "_queue", "_task", "expired", "when")

    def __init__(self, queue: _DeadlineQueue) -> None:
        self._queue = queue
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = -1  # the task's cancel requests at entry; -1: not entered
        self.when = 0.0
        """Loop time at which the task is cancelled."""
        self.expired = False
        """True once the limit passed and the task was cancelled."""

    async def __aenter__(self) -> Deadline:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __enter__(self) -> Deadline:
        queue = self._queue
        loop = queue.loop or asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline needs a task")
        if self._cancelling >= 0:
            raise RuntimeError("a deadline is entered once")
        self._task = task
        self._cancelling = task.cancelling()
        # Queued behind the blocks of the same limit entered before it (inline: this runs
        # for every request and every login).
        queue.loop = loop
        self.when = when = loop.time() + queue.limit
        queue.entries.append(self)
        queue.open += 1
        if queue.handle is None:
            queue.handle = loop.call_at(when, queue.expire)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        assert task is not None
        self._task = None  # marked: passed over by the timer
        queue = self._queue
        queue.open -= 1
        if not queue.open:
            queue.close()
        elif len(queue.entries) > 2 * queue.open + 64:
            queue.compact()
        if self.expired:
            # Ours was the cancellation (and no one else's since entry): a timeout.
            ours = task.uncancel() <= self._cancelling
            if ours and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc


class _DeadlineQueue:
    """The open blocks of one limit, in entry order, and the timer of the first one."""

    __slots__ = ("_owner", "entries", "handle", "limit", "loop", "open")

    def __init__(self, owner: Deadlines, limit: float) -> None:
        self._owner = owner
        self.limit = limit
        self.entries: deque[Deadline] = deque()
        self.open = 0
        self.handle: asyncio.TimerHandle | None = None
        """The timer, armed at the first open block's deadline."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop of the open blocks (a queue is dropped when none is open)."""

    def close(self) -> None:
        """No block open any more: disarm and leave the owner."""
        self.entries.clear()
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self._owner._drop(self)

    def compact(self) -> None:
        """Drop the left blocks (they are more than twice the open ones)."""
        self.entries = deque(e for e in self.entries if e._task is not None)

    def expire(self) -> None:
        """The timer: cancel the tasks of the blocks past their deadline, re-arm."""
        self.handle = None
        loop = self.loop
        assert loop is not None
        now = loop.time()
        entries = self.entries
        while entries:
            entry = entries[0]
            task = entry._task
            if task is not None:
                if entry.when > now:
                    self.handle = loop.call_at(entry.when, self.expire)
                    return
                entry.expired = True
                task.cancel()
            entries.popleft()
