"""Ten thousand concurrent logins through one Engine and one connector."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp
import attrs
import pytest
from pytest_aiohttp import AiohttpServer

from flowengine.clock import ManualClock
from flowengine.emulator import EmulatorConfig, create_app
from flowengine.emulator.config import PopulationConfig
from flowengine.engine import Engine

USERS = 10_000


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_ten_thousand_concurrent_logins_share_one_connector(
    aiohttp_server: AiohttpServer,
) -> None:
    """10,000 logins at once all succeed over one connector, leaving nothing open."""
    clock = ManualClock()
    config = EmulatorConfig(populations=(PopulationConfig(count=USERS),))
    config = attrs.evolve(config, settings=attrs.evolve(config.settings, recovery_codes=False))
    server = await aiohttp_server(create_app(config, clock=clock))

    created = 0

    async def on_create(
        _session: aiohttp.ClientSession, _ctx: SimpleNamespace, _params: object
    ) -> None:
        nonlocal created
        created += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    connector = aiohttp.TCPConnector(limit=100)
    session = aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trace_configs=[trace]
    )
    before = asyncio.all_tasks()
    try:
        async with Engine(
            domain=str(server.make_url("")),
            client_id="flowengine",
            client_secret="flowengine-secret",
            session=session,
            clock=clock,
            login_timeout=None,
        ) as engine:
            results = await asyncio.gather(
                *(
                    engine.login(f"user{n}@example.test", f"Passw0rd!{n}", factor="otp")
                    for n in range(1, USERS + 1)
                )
            )
            assert engine.gate.in_use == 0 and engine.gate.waiting == 0
            assert not connector._acquired
        failures = [r for r in results if not r.ok]
        assert not failures, failures[:3]
        assert len(results) == USERS
        assert all(r.enrolled for r in results)
        assert 0 < created <= 100, "every request went through the one connector's pool"
        assert session.connector is connector
    finally:
        await session.close()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    assert connector.closed
