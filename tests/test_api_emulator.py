"""AuthClient against the emulator in-process: OTP enrollment, login, id_token, userinfo."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import attrs
import pyotp
import pytest
from pytest_aiohttp import AiohttpServer

from flowengine.api import AuthClient, make_session
from flowengine.clock import ManualClock
from flowengine.emulator import create_app
from flowengine.idtoken import JwksCache
from flowengine.replies import Association, ErrorKind, ErrorReply, MfaRequired, TokenSet

AUDIENCE = "https://api.example.test/"
USER, PASSWORD = "user1@example.test", "Passw0rd!1"


@attrs.frozen
class Tenant:
    """The emulator's default tenant served in-process, its clock, and a client for it."""

    client: AuthClient
    clock: ManualClock


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session made by make_session(), closed after the test."""
    async with make_session() as session:
        yield session


@pytest.fixture
async def tenant(aiohttp_server: AiohttpServer, session: aiohttp.ClientSession) -> Tenant:
    """The default tenant on a manual clock, with the confidential client."""
    clock = ManualClock()
    server = await aiohttp_server(create_app(clock=clock))
    client = AuthClient(
        session,
        str(server.make_url("/")),
        client_id="flowengine",
        client_secret="flowengine-secret",
    )
    return Tenant(client, clock)


async def mfa_token(client: AuthClient) -> str:
    """The mfa_token of a password grant that requires MFA."""
    reply = await client.password_grant(
        USER, PASSWORD, audience=AUDIENCE, scope="openid profile email"
    )
    assert isinstance(reply, MfaRequired), reply
    return reply.mfa_token


async def enroll_otp(tenant: Tenant) -> tuple[pyotp.TOTP, TokenSet]:
    """Enroll OTP for USER and confirm it with the first code."""
    token = await mfa_token(tenant.client)
    association = await tenant.client.associate(token, authenticator_types=["otp"])
    assert isinstance(association, Association), association
    assert association.secret is not None
    totp = pyotp.TOTP(association.secret)
    tokens = await tenant.client.otp_grant(token, totp.at(tenant.clock.time()))
    assert isinstance(tokens, TokenSet), tokens
    return totp, tokens


async def test_new_user_has_no_active_authenticator(tenant: Tenant) -> None:
    """A generated user starts with no active authenticator."""
    listed = await tenant.client.list_authenticators(await mfa_token(tenant.client))
    assert isinstance(listed, list)
    assert not [a for a in listed if a.active]


async def test_otp_enrollment_gives_tokens_and_recovery_code(tenant: Tenant) -> None:
    """Associating OTP and granting with the first code returns tokens."""
    token = await mfa_token(tenant.client)
    association = await tenant.client.associate(token, authenticator_types=["otp"])
    assert isinstance(association, Association)
    assert association.authenticator_type == "otp"
    assert association.secret is not None
    code = pyotp.TOTP(association.secret).at(tenant.clock.time())
    tokens = await tenant.client.otp_grant(token, code)
    assert isinstance(tokens, TokenSet)
    assert tokens.token_type.lower() == "bearer"


async def test_login_after_enrollment(tenant: Tenant) -> None:
    """After enrollment a login lists the active OTP and completes with a fresh code."""
    totp, _ = await enroll_otp(tenant)
    tenant.clock.advance(30)  # a code is single use: take the next window
    token = await mfa_token(tenant.client)
    listed = await tenant.client.list_authenticators(token)
    assert isinstance(listed, list)
    assert [a.authenticator_type for a in listed if a.active and a.id.startswith("totp|")] == [
        "otp"
    ]
    assert isinstance(await tenant.client.otp_grant(token, totp.at(tenant.clock.time())), TokenSet)


async def test_wrong_otp_is_invalid_code(tenant: Tenant) -> None:
    """A wrong OTP comes back as an ErrorReply of kind INVALID_CODE."""
    totp, _ = await enroll_otp(tenant)
    tenant.clock.advance(30)
    token = await mfa_token(tenant.client)
    wrong = f"{(int(totp.at(tenant.clock.time())) + 1) % 1_000_000:06d}"
    reply = await tenant.client.otp_grant(token, wrong)
    assert isinstance(reply, ErrorReply)
    assert reply.kind is ErrorKind.INVALID_CODE


async def test_id_token_verifies_against_emulator_jwks(tenant: Tenant) -> None:
    """The id_token after enrollment verifies against the emulator's JWKS and issuer."""
    _, tokens = await enroll_otp(tenant)
    assert tokens.id_token is not None
    issuer = (await tenant.client.openid_configuration())["issuer"]
    cache = JwksCache(tenant.client.jwks, clock=tenant.clock)
    claims = await cache.verify(tokens.id_token, issuer=issuer, audience="flowengine")
    assert claims["email"] == USER


async def test_userinfo_with_access_token(tenant: Tenant) -> None:
    """The access token reads the user's claims at /userinfo."""
    _, tokens = await enroll_otp(tenant)
    claims = await tenant.client.userinfo(tokens.access_token)
    assert isinstance(claims, dict)
    assert claims["email"] == USER


async def test_public_client_password_grant(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    """The public client (auth method none) gets mfa_required like the confidential one."""
    server = await aiohttp_server(create_app(clock=ManualClock()))
    client = AuthClient(
        session, str(server.make_url("/")), client_id="flowengine-public", auth_method="none"
    )
    assert isinstance(await mfa_token(client), str)


async def test_json_token_body_is_accepted(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    """The emulator accepts token requests encoded as JSON."""
    server = await aiohttp_server(create_app(clock=ManualClock()))
    client = AuthClient(
        session,
        str(server.make_url("/")),
        client_id="flowengine",
        client_secret="flowengine-secret",
        token_body="json",
    )
    assert isinstance(await mfa_token(client), str)
