"""Moving time forward for journeys: OffsetClock and the emulator's clock endpoints."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from flowengine.clock import ManualClock, OffsetClock
from flowengine.emulator import STATE_KEY, EmulatorConfig, create_app
from flowengine.emulator.config import Settings

Client = TestClient[web.Request, web.Application]


def control_app(clock: ManualClock | OffsetClock | None = None) -> web.Application:
    config = EmulatorConfig(settings=Settings(control_api=True))
    return create_app(config, clock=clock)


def test_offset_clock_moves_wall_time_only() -> None:
    """advance() moves time() forward and leaves monotonic() real."""
    base = ManualClock(start=1000.0)
    clock = OffsetClock(base)
    clock.advance(600)
    assert clock.time() == 1600.0 and clock.offset == 600.0
    assert clock.monotonic() == base.monotonic()


def test_offset_clock_refuses_to_go_back() -> None:
    """A negative advance is an error."""
    with pytest.raises(ValueError, match="does not go back"):
        OffsetClock().advance(-1)


def test_offset_clock_catches_up_but_never_back() -> None:
    """catch_up() moves forward to a later time and ignores an earlier one."""
    clock = OffsetClock(ManualClock(start=1000.0))
    clock.catch_up(1100.0)
    clock.catch_up(1050.0)
    assert clock.time() == 1100.0


async def test_clock_endpoint_moves_the_emulator(aiohttp_client: AiohttpClient) -> None:
    """POST /_emulator/clock/advance moves an OffsetClock and answers the new time."""
    clock = OffsetClock(ManualClock(start=1000.0))
    client: Client = await aiohttp_client(control_app(clock))
    response = await client.post("/_emulator/clock/advance", json={"seconds": 601})
    assert response.status == 200
    assert await response.json() == {"time": 1601.0, "offset": 601.0}
    assert (await (await client.get("/_emulator/clock")).json())["time"] == 1601.0


async def test_clock_endpoint_wraps_the_system_clock(aiohttp_client: AiohttpClient) -> None:
    """An emulator on the real clock gets an OffsetClock on its first advance."""
    app = control_app()
    client: Client = await aiohttp_client(app)
    response = await client.post("/_emulator/clock/advance", json={"seconds": 30})
    assert response.status == 200
    clock = app[STATE_KEY].clock
    assert isinstance(clock, OffsetClock) and clock.offset == 30.0


@pytest.mark.parametrize("seconds", [-1, "10", True, None])
async def test_clock_endpoint_refuses_bad_seconds(
    aiohttp_client: AiohttpClient, seconds: object
) -> None:
    """seconds must be a non-negative number."""
    client: Client = await aiohttp_client(control_app(ManualClock()))
    response = await client.post("/_emulator/clock/advance", json={"seconds": seconds})
    assert response.status == 400
