"""Deadlines: asyncio.timeout's behaviour, on one loop timer per limit."""

from __future__ import annotations

import asyncio

import pytest

from flowengine.gate import Deadlines


async def test_a_block_past_its_limit_raises_timeout_error() -> None:
    """The task is cancelled at the limit and the block raises TimeoutError."""
    deadlines = Deadlines()
    with pytest.raises(TimeoutError):
        async with deadlines.timeout(0.01) as deadline:
            await asyncio.sleep(5)
    assert deadline.expired
    assert deadlines.open == 0
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_block_within_its_limit_is_left_alone() -> None:
    """A block that ends in time neither raises nor leaves anything armed."""
    deadlines = Deadlines()
    async with deadlines.timeout(5) as deadline:
        await asyncio.sleep(0)
    assert not deadline.expired
    assert deadlines.open == 0
    assert not deadlines._queues


async def test_only_overdue_blocks_expire() -> None:
    """Of many blocks on one limit, those past it expire, in order; the others finish."""
    deadlines = Deadlines()
    outcomes: dict[int, str] = {}

    async def block(n: int, seconds: float) -> None:
        try:
            async with deadlines.timeout(0.05):
                await asyncio.sleep(seconds)
            outcomes[n] = "done"
        except TimeoutError:
            outcomes[n] = "timeout"

    await asyncio.gather(*(block(n, 0.2 if n % 3 == 0 else 0.001) for n in range(30)))
    assert outcomes == {n: "timeout" if n % 3 == 0 else "done" for n in range(30)}
    assert deadlines.open == 0


async def test_blocks_of_different_limits_keep_their_own() -> None:
    """A short limit entered after a long one still expires first."""
    deadlines = Deadlines()
    ended: list[str] = []

    async def block(name: str, limit: float) -> None:
        with pytest.raises(TimeoutError):
            async with deadlines.timeout(limit):
                await asyncio.sleep(5)
        ended.append(name)

    long = asyncio.ensure_future(block("long", 0.2))
    await asyncio.sleep(0)
    await block("short", 0.02)
    await long
    assert ended == ["short", "long"]


async def test_someone_elses_cancellation_is_not_a_timeout() -> None:
    """A task cancelled from outside raises CancelledError, not TimeoutError."""
    deadlines = Deadlines()
    entered = asyncio.Event()

    async def block() -> None:
        async with deadlines.timeout(5):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.ensure_future(block())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.open == 0


async def test_finished_blocks_do_not_pile_up() -> None:
    """Thousands of finished blocks behind a long open one are dropped as they go."""
    deadlines = Deadlines()
    release = asyncio.Event()

    async def slow() -> None:
        async with deadlines.timeout(60):
            await release.wait()

    held = asyncio.ensure_future(slow())
    await asyncio.sleep(0)
    for _ in range(5000):
        async with deadlines.timeout(60):
            pass
    (queue,) = deadlines._queues.values()
    assert len(queue.entries) <= 2 * queue.open + 64
    release.set()
    await held
    assert deadlines.open == 0 and not deadlines._queues


async def test_a_deadline_is_entered_once() -> None:
    """Entering the same block twice is an error, as with asyncio.timeout."""
    deadline = Deadlines().timeout(1)
    async with deadline:
        pass
    with pytest.raises(RuntimeError):
        async with deadline:
            pass


async def test_a_plain_with_works_as_well() -> None:
    """Entering and leaving never wait, so a plain ``with`` block behaves the same."""
    deadlines = Deadlines()
    with pytest.raises(TimeoutError), deadlines.timeout(0.01):
        await asyncio.sleep(5)
    with deadlines.timeout(5):
        await asyncio.sleep(0)
    assert deadlines.open == 0
