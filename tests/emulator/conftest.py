"""Fixtures: an emulator app on a manual clock, with a small test tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from flowengine.clock import ManualClock
from flowengine.emulator import EmulatorConfig, create_app
from flowengine.emulator.config import (
    GRANT_PASSWORD,
    ApiConfig,
    ClientConfig,
    FactorSeed,
    PopulationConfig,
    Settings,
    UserConfig,
)
from tests.emulator.helpers import OTP_SECRET, RECOVERY_CODE

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

TEST_CONFIG = EmulatorConfig(
    clients=(
        ClientConfig(client_id="app", client_secret="app-secret"),
        ClientConfig(client_id="public", auth_method="none"),
        ClientConfig(
            client_id="basic", client_secret="basic-secret", auth_method="client_secret_basic"
        ),
        ClientConfig(
            client_id="narrow",
            client_secret="narrow-secret",
            grant_types=frozenset({GRANT_PASSWORD}),
        ),
        ClientConfig(client_id="proxy", client_secret="proxy-secret", trust_forwarded_for=True),
    ),
    apis=(
        ApiConfig(
            audience="https://api.test/",
            scopes=("read:data", "write:data"),
            allow_offline_access=True,
        ),
        ApiConfig(audience="https://closed.test/", scopes=("read:closed",)),
    ),
    users=(
        UserConfig(username="alice@example.com", password="alice-pw", phone_number="+15550000001"),
        UserConfig(
            username="bob@example.com",
            password="bob-pw",
            factors=(FactorSeed(type="otp", secret=OTP_SECRET),),
            recovery_code=RECOVERY_CODE,
        ),
        UserConfig(
            username="carol@example.com",
            password="carol-pw",
            phone_number="+15550000003",
            factors=(FactorSeed(type="sms"),),
        ),
        UserConfig(
            username="dave@example.com", password="dave-pw", factors=(FactorSeed(type="email"),)
        ),
        UserConfig(
            username="erin@example.com", password="erin-pw", factors=(FactorSeed(type="push"),)
        ),
        UserConfig(
            username="frank", password="frank-pw", mfa_required=False, email="frank@example.com"
        ),
        UserConfig(username="blocked@example.com", password="blocked-pw", blocked=True),
    ),
    populations=(PopulationConfig(count=100),),
    settings=Settings(control_api=True),
)


def with_settings(config: EmulatorConfig = TEST_CONFIG, **changes: Any) -> EmulatorConfig:
    """``config`` with some settings changed."""
    return attrs.evolve(config, settings=attrs.evolve(config.settings, **changes))


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at 2026-01-01."""
    return ManualClock()


@pytest.fixture
def make_client(aiohttp_client: Any, clock: ManualClock) -> MakeClient:
    """Start the emulator for a config (the test tenant by default) on the manual clock."""

    async def make(config: EmulatorConfig = TEST_CONFIG, **settings: Any) -> Client:
        if settings:
            config = with_settings(config, **settings)
        client: Client = await aiohttp_client(create_app(config, clock=clock))
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    """The emulator with the test tenant."""
    return await make_client()
