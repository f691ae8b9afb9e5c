"""Safety: the remote-load guard, retry/lockout settings in scenarios, per-step timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from flowengine.clock import ManualClock
from flowengine.emulator import create_app
from flowengine.engine import Engine
from flowengine.errors import ConfigError, ScenarioError
from flowengine.runner import Runner, check_load_is_acknowledged
from flowengine.spec import Scenario, parse_scenario

USERS = {"pattern": "user{n}@example.test", "password": "p{n}", "count": 50}
REMOTE = {"domain": "tenant.eu.auth0.com", "client_id": "abc", "client_secret": "${S}"}


def scenario(tmp_path: Path, **data: Any) -> Scenario:
    """A scenario from ``data`` (the secret comes from a fake environment)."""
    document = {"users": USERS, "credentials": "memory", **data}
    return parse_scenario(document, source="s.yaml", base_dir=tmp_path, env={"S": "shh"})


def test_a_remote_load_above_the_safe_rate_needs_acknowledgement(tmp_path: Path) -> None:
    """100 flows/s on a tenant elsewhere is refused without the flag, naming it."""
    loaded = scenario(
        tmp_path, target=REMOTE, load={"model": "open", "rate": 100, "duration": "10s"}
    )
    with pytest.raises(ConfigError, match="--acknowledge-load-test") as caught:
        Runner(loaded)
    assert "tenant.eu.auth0.com" in str(caught.value) and "100 flows/s" in str(caught.value)
    Runner(loaded, acknowledge_load_test=True)  # acknowledged: accepted


def test_many_virtual_users_on_a_remote_tenant_need_acknowledgement(tmp_path: Path) -> None:
    """The guard counts closed-model virtual users too."""
    loaded = scenario(
        tmp_path, target=REMOTE, load={"model": "closed", "users": 20, "iterations": 20}
    )
    with pytest.raises(ConfigError, match="20 concurrent virtual users"):
        check_load_is_acknowledged(loaded)


def test_a_gentle_remote_run_and_any_local_run_pass_the_guard(tmp_path: Path) -> None:
    """One login a second on a tenant, or any load on this machine, needs no flag."""
    gentle = scenario(tmp_path, target=REMOTE, load={"model": "open", "rate": 1, "duration": "5s"})
    check_load_is_acknowledged(gentle)
    local = scenario(tmp_path, load={"model": "open", "rate": 500, "duration": "5s"})
    check_load_is_acknowledged(local)


def test_retry_and_lockout_settings_are_read(tmp_path: Path) -> None:
    """retry: and lockout: become the engine's policies."""
    loaded = scenario(
        tmp_path,
        load={"model": "closed", "users": 1, "iterations": 1},
        retry={"budget": 3, "base": "50ms", "cap": "2s", "server_errors": False},
        lockout={"share": 0.3},
    )
    assert (loaded.retry.budget, loaded.retry.base, loaded.retry.cap) == (3, 0.05, 2.0)
    assert loaded.retry.server_errors is False
    assert loaded.lockout.share == 0.3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"retry": {"budget": -1}}, "retry.budget: expected a whole number of retries"),
        ({"retry": {"tries": 3}}, "retry.tries: unknown key; expected one of base, budget"),
        ({"lockout": {"share": 1.5}}, "lockout.share: expected the share"),
        ({"retry": {"server_errors": "yes"}}, "retry.server_errors: expected true or false"),
    ],
)
def test_bad_retry_and_lockout_settings_name_the_key(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    """A wrong value is one ScenarioError naming the key path."""
    with pytest.raises(ScenarioError, match=message):
        scenario(tmp_path, load={"model": "closed", "users": 1, "iterations": 1}, **data)


async def test_a_step_past_its_timeout_ends_the_login(aiohttp_server: AiohttpServer) -> None:
    """A step timeout ends a login as a timeout naming the step, well before the flow's."""
    app = create_app(clock=ManualClock())

    @web.middleware
    async def stall_authenticators(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/mfa/authenticators":
            await asyncio.sleep(5)
        return await handler(request)

    app.middlewares.append(stall_authenticators)
    server = await aiohttp_server(app)
    async with Engine(
        domain=str(server.make_url("")),
        client_id="flowengine",
        client_secret="flowengine-secret",
        step_timeout=0.2,
    ) as engine:
        result = await engine.login("user1@example.test", "Passw0rd!1", factor="otp")
    assert result.outcome == "timeout" and result.error == "step_timeout"
    assert result.state == "authenticators"
    assert result.seconds < 2
