"""Fault injection: each fault as a client sees it, and the faults section's errors."""

from __future__ import annotations

import aiohttp
import pytest
from click.testing import CliRunner
from pytest_aiohttp import AiohttpClient

from flowengine.clock import ManualClock
from flowengine.emulator import EmulatorConfig, create_app
from flowengine.emulator.cli import _faults_from_flags
from flowengine.emulator.faults import Faults, Latency
from flowengine.emulator.tenant import parse_tenant
from flowengine.errors import TenantFileError

PASSWORD_GRANT = {
    "grant_type": "password",
    "username": "user1@example.test",
    "password": "Passw0rd!1",
    "client_id": "flowengine",
    "client_secret": "flowengine-secret",
}


def tenant_with(**faults: object) -> EmulatorConfig:
    """The default tenant (one generated population) with ``faults``."""
    return parse_tenant({"population": {"count": 10}, "faults": {"seed": 3, **faults}})


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [("error_5xx", 503, "temporarily_unavailable"), ("rate_limit_429", 429, "too_many_requests")],
)
async def test_error_faults_answer_before_processing(
    aiohttp_client: AiohttpClient, fault: str, status: int, error: str
) -> None:
    """A faulted request gets the fault's status and error, and was not processed."""
    config = tenant_with(**{fault: 1.0})
    client = await aiohttp_client(create_app(config, clock=ManualClock()))
    response = await client.post("/oauth/token", data=PASSWORD_GRANT)
    assert response.status == status
    assert (await response.json())["error"] == error
    if status == 429:
        assert response.headers["Retry-After"] == "1"
        assert int(response.headers["X-RateLimit-Reset"]) > 0


async def test_reset_closes_the_connection(aiohttp_client: AiohttpClient) -> None:
    """A reset fault drops the connection without an answer."""
    client = await aiohttp_client(create_app(tenant_with(reset=1.0)))
    with pytest.raises(aiohttp.ClientError):
        await client.post("/oauth/token", data=PASSWORD_GRANT)


async def test_malformed_json_is_answered_after_processing(aiohttp_client: AiohttpClient) -> None:
    """The request is handled (mfa_required), but its body is broken JSON."""
    client = await aiohttp_client(create_app(tenant_with(malformed_json=1.0)))
    response = await client.post("/oauth/token", data=PASSWORD_GRANT)
    assert response.status == 403
    with pytest.raises(ValueError):
        await response.json()


async def test_truncated_body_breaks_off(aiohttp_client: AiohttpClient) -> None:
    """A truncated answer promises more bytes than it sends."""
    client = await aiohttp_client(create_app(tenant_with(truncated=1.0)))
    response = await client.post("/oauth/token", data=PASSWORD_GRANT)
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()


async def test_slow_body_arrives_whole(aiohttp_client: AiohttpClient) -> None:
    """A slow answer arrives complete, late."""
    config = tenant_with(slow_body=1.0, slow_body_seconds=0.05)
    client = await aiohttp_client(create_app(config))
    response = await client.post("/oauth/token", data=PASSWORD_GRANT)
    assert (await response.json())["error"] == "mfa_required"


async def test_control_api_is_never_faulted(aiohttp_client: AiohttpClient) -> None:
    """Faults spare /_emulator/."""
    doc = {
        "population": {"count": 10},
        "faults": {"error_5xx": 1.0},
        "settings": {"control_api": True},
    }
    client = await aiohttp_client(create_app(parse_tenant(doc)))
    response = await client.get("/_emulator/users/user1%40example.test")
    assert response.status == 200


async def test_clock_skew_moves_the_emulators_time(aiohttp_client: AiohttpClient) -> None:
    """With a skew, issued tokens' iat is that far from the client's clock."""
    clock = ManualClock()
    doc = {
        "population": {"count": 10},
        "faults": {"clock_skew": -120},
        "settings": {"control_api": True},
    }
    client = await aiohttp_client(create_app(parse_tenant(doc), clock=clock))
    response = await client.get("/_emulator/clock")
    assert (await response.json())["time"] == pytest.approx(clock.time() - 120)


def test_lognormal_latency_has_the_asked_median_and_p99() -> None:
    """A log-normal latency of median 10 ms and p99 100 ms draws about that."""
    import random

    latency = Latency(distribution="lognormal", low=0.01, high=0.1)
    rng = random.Random(1)
    samples = sorted(latency.sample(rng) for _ in range(20_000))
    assert samples[10_000] == pytest.approx(0.01, rel=0.1)
    assert samples[19_800] == pytest.approx(0.1, rel=0.2)


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ({"error_5xx": 2}, "faults.error_5xx: expected a share of requests between 0 and 1"),
        ({"error_5xx": 0.6, "reset": 0.6}, "faults: expected shares of requests that add up"),
        ({"latency": {"distribution": "pareto"}}, "faults.latency.distribution: expected fixed"),
        ({"jitter": 1}, "faults.jitter: expected one of"),
        ({"latency": {"low": 0.5, "high": 0.1}}, "faults.latency.high: expected at least low"),
    ],
)
def test_bad_faults_name_the_key(faults: dict[str, object], message: str) -> None:
    """A bad faults section is one TenantFileError naming the key."""
    with pytest.raises(TenantFileError, match=message):
        parse_tenant({"faults": faults})


def test_command_line_flags_override_the_tenant() -> None:
    """--fault-5xx, --latency and --clock-skew lay over the tenant's faults."""
    faults = _faults_from_flags(Faults(reset=0.01), "5ms..50ms", "-30s", 7, {"error_5xx": 0.02})
    assert (faults.error_5xx, faults.reset, faults.clock_skew, faults.seed) == (
        0.02,
        0.01,
        -30.0,
        7,
    )
    assert faults.latency == Latency(distribution="uniform", low=0.005, high=0.05)


def test_command_line_refuses_shares_above_one() -> None:
    """Fault flags adding up to more than 1 are a usage error."""
    from flowengine.emulator.cli import emulator_command

    result = CliRunner().invoke(emulator_command, ["--fault-5xx", "0.7", "--fault-429", "0.7"])
    assert result.exit_code == 2 and "add up to more than 1" in result.output
