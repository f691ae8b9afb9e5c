"""Ctrl-C handling shared by a run and a scaled run."""

from __future__ import annotations

import asyncio
import os
import signal

from flowengine.signals import run_with_signals


class Job:
    """A run that records how it was asked to stop."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.done = asyncio.Event()

    def stop(self) -> None:
        self.calls.append("stop")

    def abort(self) -> None:
        self.calls.append("abort")
        self.done.set()

    async def run(self) -> str:
        await self.done.wait()
        return "finished"


async def test_first_signal_stops_second_aborts() -> None:
    """SIGINT once: stop(); SIGTERM next: abort(); the handlers are removed afterwards."""
    job = Job()
    task = asyncio.ensure_future(run_with_signals(job))
    await asyncio.sleep(0)
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(0.05)
    assert job.calls == ["stop"]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, timeout=5) == "finished"
    assert job.calls == ["stop", "abort"]
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
