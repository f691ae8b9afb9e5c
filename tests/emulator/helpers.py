"""Request helpers for the emulator tests."""

from __future__ import annotations

from typing import Any

import pyotp
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from flowengine.clock import ManualClock
from flowengine.emulator import STATE_KEY, EmulatorState

__all__ = [
    "MFA_AUDIENCE_PATH",
    "OOB",
    "OTP",
    "OTP_SECRET",
    "RECOVERY",
    "RECOVERY_CODE",
    "associate",
    "challenge",
    "grant",
    "json_of",
    "mfa_api_token",
    "mfa_token",
    "otp_now",
    "password",
    "state_of",
]

Client = TestClient[web.Request, web.Application]
OTP = "http://auth0.com/oauth/grant-type/mfa-otp"
OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
RECOVERY = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
RECOVERY_CODE = "ABCDEFGHIJKLMNOPQRSTUVWX"
MFA_AUDIENCE_PATH = "/mfa/"
APP = {"client_id": "app", "client_secret": "app-secret"}


def state_of(client: Client) -> EmulatorState:
    """The emulator state behind a test client."""
    app = client.app
    assert app is not None
    return app[STATE_KEY]


async def json_of(response: ClientResponse) -> Any:
    """The JSON body (any content type)."""
    return await response.json(content_type=None)


async def password(client: Client, username: str, pw: str, **extra: Any) -> ClientResponse:
    """POST /oauth/token grant_type=password as the ``app`` client (JSON body)."""
    body = {"grant_type": "password", "username": username, "password": pw, **APP, **extra}
    return await client.post("/oauth/token", json=body)


async def mfa_token(client: Client, username: str, pw: str, **extra: Any) -> str:
    """An mfa_token for the user (asserts mfa_required)."""
    response = await password(client, username, pw, **extra)
    body = await json_of(response)
    assert response.status == 403, body
    assert body["error"] == "mfa_required"
    token: str = body["mfa_token"]
    return token


async def grant(client: Client, grant_type: str, token: str, **params: Any) -> ClientResponse:
    """POST /oauth/token with an MFA grant as the ``app`` client (form body)."""
    data = {"grant_type": grant_type, "mfa_token": token, **APP, **params}
    return await client.post("/oauth/token", data=data)


async def challenge(client: Client, token: str, **params: Any) -> ClientResponse:
    """POST /mfa/challenge as the ``app`` client."""
    return await client.post("/mfa/challenge", json={"mfa_token": token, **APP, **params})


async def associate(client: Client, bearer: str, **params: Any) -> ClientResponse:
    """POST /mfa/associate with a bearer token."""
    return await client.post(
        "/mfa/associate", json=params, headers={"Authorization": f"Bearer {bearer}"}
    )


def otp_now(secret: str, clock: ManualClock, offset: int = 0) -> str:
    """The TOTP code of ``secret`` at the clock's time (+ offset steps)."""
    return pyotp.TOTP(secret).at(clock.time() + 30 * offset)


async def mfa_api_token(
    client: Client,
    clock: ManualClock,
    scope: str = "enroll read:authenticators remove:authenticators",
) -> str:
    """An MFA-API access token for bob (after an OTP login)."""
    base = str(client.make_url("")).rstrip("/")
    token = await mfa_token(
        client, "bob@example.com", "bob-pw", audience=base + MFA_AUDIENCE_PATH, scope=scope
    )
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock))
    body = await json_of(response)
    assert response.status == 200, body
    access: str = body["access_token"]
    clock.advance(30)
    return access
