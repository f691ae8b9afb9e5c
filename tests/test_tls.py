"""TLS is verified by default; a custom CA bundle is how a private CA is trusted."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_aiohttp import AiohttpServer

from flowengine.api import make_session
from flowengine.emulator import create_app
from flowengine.engine import Engine


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_emulator(aiohttp_server: AiohttpServer, tmp_path: Path) -> tuple[str, Path]:
    """The emulator served over HTTPS with a self-signed certificate; (base URL, CA file)."""
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
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


async def test_a_ca_bundle_makes_it_trusted(tls_emulator: tuple[str, Path]) -> None:
    """With the CA bundle, the same login succeeds."""
    assert await _login(*tls_emulator) == "success"
