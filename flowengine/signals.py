"""Ctrl-C and SIGTERM for a run: the first asks it to stop gracefully, the second at once."""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol, TypeVar

__all__ = ["Stoppable", "run_with_signals"]

_T_co = TypeVar("_T_co", covariant=True)


class Stoppable(Protocol[_T_co]):
    """A run that can be stopped gracefully (:meth:`stop`) or at once (:meth:`abort`)."""

    def stop(self) -> None: ...

    def abort(self) -> None: ...

    async def run(self) -> _T_co: ...


async def run_with_signals(job: Stoppable[_T_co]) -> _T_co:
    """Run ``job``; SIGINT/SIGTERM once calls ``job.stop()``, twice ``job.abort()``."""
    loop = asyncio.get_running_loop()
    presses = 0

    def on_signal() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            job.stop()
        else:
            job.abort()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await job.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
