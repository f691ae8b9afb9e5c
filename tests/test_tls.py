"""TLS is verified by default; a custom CA bundle is how a private CA is trusted."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from flowengine.api import make_session
from flowengine.emulator import create_app
from flowengine.engine import Engine
from tests.certificates import self_signed


@pytest.fixture
async def tls_emulator(aiohttp_server: AiohttpServer, tmp_path: Path) -> tuple[str, Path]:
    """The emulator served over HTTPS with a self-signed certificate; (base URL, CA file)."""
    cert, context = self_signed(tmp_path)
    app: web.Application = create_app()
    server = await aiohttp_server(app, ssl=context, host="localhost")
    return f"https://localhost:{server.port}", cert


async def _login(base_url: str, ca: Path | None) -> str:
    session = None
    if ca is not None:
        session = make_session(ssl=ssl.create_default_context(cafile=str(ca)))
    try:
        async with Engine(
            domain=base_url,
            client_id="flowengine",
            client_secret="flowengine-secret",
            session=session,
        ) as engine:
            result = await engine.login("user1@example.test", "Passw0rd!1", factor="otp")
            return result.outcome if result.ok else str(result.error)
    finally:
        if session is not None:
            await session.close()


async def test_an_unknown_certificate_is_refused(tls_emulator: tuple[str, Path]) -> None:
    """Without the CA, the self-signed tenant is not trusted: the login fails to connect."""
    assert await _login(tls_emulator[0], None) == "transport_error"


async def test_an_unverified_certificate_is_not_retried(tls_emulator: tuple[str, Path]) -> None:
    """Trying again cannot make a certificate verify: the login fails without retries."""
    async with Engine(
        domain=tls_emulator[0], client_id="flowengine", client_secret="flowengine-secret"
    ) as engine:
        result = await engine.login("user1@example.test", "Passw0rd!1", factor="otp")
    assert result.error == "transport_error"
    assert result.retries == ()
    assert "retry_wait" not in [step.step for step in result.path]


async def test_a_ca_bundle_makes_it_trusted(tls_emulator: tuple[str, Path]) -> None:
    """With the CA bundle, the same login succeeds."""
    assert await _login(*tls_emulator) == "success"
