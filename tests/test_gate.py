"""The FIFO gate in front of the pool."""

from __future__ import annotations

import asyncio

import pytest

from flowengine.gate import FifoGate


async def test_admits_up_to_the_limit_at_once() -> None:
    """Two places: two acquire at once, the third waits."""
    gate = FifoGate(2)
    await gate.acquire()
    await gate.acquire()
    third = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    assert not third.done()
    assert gate.in_use == 2
    assert gate.waiting == 1
    gate.release()
    await third
    assert gate.waiting == 0


async def test_waiters_are_admitted_in_arrival_order() -> None:
    """Whoever queued first is admitted first."""
    gate = FifoGate(1)
    await gate.acquire()
    order: list[int] = []

    async def user(n: int) -> None:
        await gate.acquire()
        order.append(n)
        gate.release()

    tasks = [asyncio.ensure_future(user(n)) for n in range(20)]
    await asyncio.sleep(0)
    gate.release()
    await asyncio.gather(*tasks)
    assert order == list(range(20))


async def test_a_cancelled_waiter_gives_up_its_turn() -> None:
    """Cancelling a waiter removes it; the place goes to the next one."""
    gate = FifoGate(1)
    await gate.acquire()
    first = asyncio.ensure_future(gate.acquire())
    second = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.release()
    await second
    assert gate.in_use == 1
    assert gate.waiting == 0


async def test_admitted_then_cancelled_passes_the_place_on() -> None:
    """A waiter cancelled after being admitted hands its place to the next."""
    gate = FifoGate(1)
    await gate.acquire()
    first = asyncio.ensure_future(gate.acquire())
    second = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # admits first...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert gate.in_use == 1


def test_releasing_more_than_acquired_is_an_error() -> None:
    """An extra release is a bug and says so."""
    gate = FifoGate(1)
    with pytest.raises(RuntimeError, match="released more often"):
        gate.release()


def test_limit_must_be_positive() -> None:
    """A gate of zero places is refused."""
    with pytest.raises(ValueError, match="positive limit"):
        FifoGate(0)
