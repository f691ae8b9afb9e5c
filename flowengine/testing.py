"""Helpers for your own tests: the emulator on a free loopback port, in your event loop.

>>> async with running_emulator() as base_url:
...     async with Engine(domain=base_url, client_id="flowengine",
...                       client_secret="flowengine-secret") as engine:
...         result = await engine.login("user1@example.test", "Passw0rd!1", factor="otp")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

from flowengine.embedded import EmbeddedEmulator
from flowengine.emulator import EmulatorConfig

__all__ = ["running_emulator"]


@asynccontextmanager
async def running_emulator(
    config: EmulatorConfig | None = None, *, control_api: bool = True
) -> AsyncIterator[str]:
    """Serve the emulator (default tenant unless ``config``) and yield its base URL.

    The control API (codes, push answers) is on unless ``control_api=False``.
    """
    config = config or EmulatorConfig.default()
    settings = attrs.evolve(config.settings, control_api=control_api)
    async with EmbeddedEmulator(attrs.evolve(config, settings=settings)) as emulator:
        yield emulator.base_url
