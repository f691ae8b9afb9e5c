"""Replay of responses recorded from a real Auth0 tenant (shared/reference/fixtures/go-auth0).

For each recording the emulator is driven to the same situation and sent the same request;
it must answer the same status, the same set of keys and, for errors, the same ``error`` and
``error_description``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from flowengine.clock import ManualClock
from flowengine.emulator import EmulatorConfig
from flowengine.emulator.config import ClientConfig, FactorSeed, Settings, UserConfig
from flowengine.jsonio import loads
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import (
    OOB,
    OTP,
    OTP_SECRET,
    RECOVERY,
    RECOVERY_CODE,
    json_of,
    otp_now,
    state_of,
)

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "fixtures"
RECORDED = FIXTURES / "go-auth0"
CREDS = {"client_id": "test-client_id", "client_secret": "test-client_secret"}

TENANT = EmulatorConfig(
    clients=(
        ClientConfig(client_id="test-client_id", client_secret="test-client_secret"),
        ClientConfig(client_id="test-public", auth_method="none"),
    ),
    users=(
        UserConfig(username="user@example.com", password="pw"),
        UserConfig(username="testuser", password="testuser123", mfa_required=False),
        UserConfig(
            username="otp@example.com",
            password="pw",
            factors=(FactorSeed(type="otp", secret=OTP_SECRET),),
            recovery_code=RECOVERY_CODE,
        ),
        UserConfig(username="push@example.com", password="pw", factors=(FactorSeed(type="push"),)),
    ),
    settings=Settings(control_api=True, friendly_name="My Test Tenant"),
)
Reply = tuple[int, Any]
Scenario = Callable[[MakeClient, ManualClock], Awaitable[Reply]]


async def _reply(response: Any) -> Reply:
    raw = await response.read()
    return response.status, (loads(raw) if raw else None)


async def _mfa_token(client: Client, username: str, **extra: str) -> str:
    body = {"grant_type": "password", "username": username, "password": "pw", **CREDS, **extra}
    reply = await json_of(await client.post("/oauth/token", data=body))
    token: str = reply["mfa_token"]
    return token


async def _associate(client: Client, token: str, body: dict[str, Any]) -> Any:
    return await client.post(
        "/mfa/associate", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def _request_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = loads((RECORDED / f"{name}.json").read_bytes())["request"]["body"]
    return {**body, **CREDS}


async def associate_oob_auth0_200(make: MakeClient, clock: ManualClock) -> Reply:
    """Push enrollment of a user whose first (abandoned) enrollment already gave a recovery code."""
    client = await make(TENANT)
    token = await _mfa_token(client, "user@example.com")
    await _associate(client, token, {"authenticator_types": ["otp"]})
    return await _reply(await _associate(client, token, _request_body("associate-oob-auth0-200")))


async def associate_oob_sms_200(make: MakeClient, clock: ManualClock) -> Reply:
    """SMS enrollment as the user's first enrollment."""
    client = await make(TENANT)
    token = await _mfa_token(client, "user@example.com")
    return await _reply(await _associate(client, token, _request_body("associate-oob-sms-200")))


async def associate_otp_200(make: MakeClient, clock: ManualClock) -> Reply:
    """OTP enrollment of a user who already had a recovery code."""
    client = await make(TENANT)
    token = await _mfa_token(client, "user@example.com")
    await _associate(client, token, {"authenticator_types": ["otp"]})
    return await _reply(await _associate(client, token, _request_body("associate-otp-200")))


def _authenticator_id(client: Client, username: str, prefix: str) -> str:
    user = state_of(client).user(username)
    assert user is not None
    return next(a for a in user.authenticators if a.startswith(prefix))


async def challenge_oob_200(make: MakeClient, clock: ManualClock) -> Reply:
    """Push challenge of an enrolled push authenticator."""
    client = await make(TENANT)
    token = await _mfa_token(client, "push@example.com")
    body = {**_request_body("challenge-oob-200"), "mfa_token": token}
    body["authenticator_id"] = _authenticator_id(client, "push@example.com", "push|")
    return await _reply(await client.post("/mfa/challenge", json=body))


async def challenge_otp_200(make: MakeClient, clock: ManualClock) -> Reply:
    """OTP challenge of an enrolled otp authenticator."""
    client = await make(TENANT)
    token = await _mfa_token(client, "otp@example.com")
    body = {**_request_body("challenge-otp-200"), "mfa_token": token}
    body["authenticator_id"] = _authenticator_id(client, "otp@example.com", "totp|")
    return await _reply(await client.post("/mfa/challenge", json=body))


async def _mfa_api_token(client: Client, clock: ManualClock, username: str) -> str:
    base = str(client.make_url("")).rstrip("/")
    token = await _mfa_token(
        client,
        username,
        audience=base + "/mfa/",
        scope="enroll read:authenticators remove:authenticators",
    )
    if username == "otp@example.com":
        data = {"grant_type": OTP, "mfa_token": token, "otp": otp_now(OTP_SECRET, clock), **CREDS}
    else:
        oob_code = (
            await json_of(
                await client.post(
                    "/mfa/challenge", json={"mfa_token": token, "challenge_type": "oob", **CREDS}
                )
            )
        )["oob_code"]
        state = state_of(client)
        code = state.inbox(username)[-1].code
        data = {
            "grant_type": OOB,
            "mfa_token": token,
            "oob_code": oob_code,
            "binding_code": code,
            **CREDS,
        }
    reply = await json_of(await client.post("/oauth/token", data=data))
    return str(reply["access_token"])


async def delete_authenticator_204(make: MakeClient, clock: ManualClock) -> Reply:
    """Delete a push authenticator (id percent-encoded) with an MFA-API access token."""
    client = await make(TENANT)
    access = await _mfa_api_token(client, clock, "otp@example.com")
    await _associate(client, access, {"authenticator_types": ["oob"], "oob_channels": ["auth0"]})
    push_id = _authenticator_id(client, "otp@example.com", "push|")
    response = await client.delete(
        "/mfa/authenticators/" + push_id.replace("|", "%7C"),
        headers={"Authorization": f"Bearer {access}", "Content-Type": "application/json"},
    )
    return await _reply(response)


async def list_authenticators_200(make: MakeClient, clock: ManualClock) -> Reply:
    """Implicit active email, then unconfirmed sms, push (+ otp twin) and otp enrollments."""
    settings = attrs.evolve(
        TENANT.settings,
        factors=frozenset({"otp", "sms", "email", "push"}),
        implicit_email_authenticator=True,
    )
    client = await make(attrs.evolve(TENANT, settings=settings))
    access = await _mfa_api_token(client, clock, "user@example.com")
    await _associate(
        client,
        access,
        {"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+15550009167"},
    )
    await _associate(client, access, {"authenticator_types": ["oob"], "oob_channels": ["auth0"]})
    await _associate(client, access, {"authenticator_types": ["otp"]})
    return await _reply(
        await client.get("/mfa/authenticators", headers={"Authorization": f"Bearer {access}"})
    )


async def mfa_required_403(make: MakeClient, clock: ManualClock) -> Reply:
    """Password grant of an enrolled user on a tenant with mfa_requirements on."""
    client = await make(
        attrs.evolve(TENANT, settings=attrs.evolve(TENANT.settings, mfa_requirements=True))
    )
    body = {"grant_type": "password", "username": "otp@example.com", "password": "pw", **CREDS}
    return await _reply(await client.post("/oauth/token", data=body))


async def _push_poll(make: MakeClient, answer: str | None) -> Reply:
    client = await make(TENANT)
    token = await _mfa_token(client, "push@example.com", scope="profile")
    challenged = await json_of(
        await client.post(
            "/mfa/challenge", json={"mfa_token": token, "challenge_type": "oob", **CREDS}
        )
    )
    state = state_of(client)
    if answer == "approve":
        state.approve_push("push@example.com")
    elif answer == "reject":
        state.reject_push("push@example.com")
    data = {"grant_type": OOB, "mfa_token": token, "oob_code": challenged["oob_code"], **CREDS}
    return await _reply(await client.post("/oauth/token", data=data))


async def token_mfa_oob_approved_200(make: MakeClient, clock: ManualClock) -> Reply:
    """Poll after the push was approved (scope requested, no openid: no id_token)."""
    return await _push_poll(make, "approve")


async def token_mfa_oob_denied_400(make: MakeClient, clock: ManualClock) -> Reply:
    """Poll after the push was rejected."""
    return await _push_poll(make, "reject")


async def token_mfa_oob_pending_400(make: MakeClient, clock: ManualClock) -> Reply:
    """Poll before the push was answered."""
    return await _push_poll(make, None)


async def token_mfa_otp_200(make: MakeClient, clock: ManualClock) -> Reply:
    """mfa-otp grant with a valid code (form body)."""
    client = await make(TENANT)
    token = await _mfa_token(client, "otp@example.com", scope="profile")
    data = {"grant_type": OTP, "mfa_token": token, "otp": otp_now(OTP_SECRET, clock), **CREDS}
    return await _reply(await client.post("/oauth/token", data=data))


async def token_mfa_recovery_code_200(make: MakeClient, clock: ManualClock) -> Reply:
    """mfa-recovery-code grant with the user's recovery code."""
    client = await make(TENANT)
    token = await _mfa_token(client, "otp@example.com", scope="profile")
    data = {"grant_type": RECOVERY, "mfa_token": token, "recovery_code": RECOVERY_CODE, **CREDS}
    return await _reply(await client.post("/oauth/token", data=data))


async def token_password_200(make: MakeClient, clock: ManualClock) -> Reply:
    """Password grant of a user without MFA, public client, no scope."""
    client = await make(TENANT)
    data = {
        "grant_type": "password",
        "username": "testuser",
        "password": "testuser123",
        "client_id": "test-public",
    }
    return await _reply(await client.post("/oauth/token", data=data))


async def token_password_with_id_token_200(make: MakeClient, clock: ManualClock) -> Reply:
    """The same request on a tenant whose default scope is openid."""
    client = await make(
        attrs.evolve(TENANT, settings=attrs.evolve(TENANT.settings, default_scope="openid"))
    )
    data = {
        "grant_type": "password",
        "username": "testuser",
        "password": "testuser123",
        "client_id": "test-public",
    }
    return await _reply(await client.post("/oauth/token", data=data))


SCENARIOS: dict[str, Scenario] = {
    name.replace("_", "-"): scenario
    for name, scenario in list(globals().items())
    if name.endswith(("_200", "_204", "_400", "_403"))
}


def _recordings() -> list[Path]:
    return sorted(RECORDED.glob("*.json")) if RECORDED.is_dir() else []


def _shape(body: Any) -> Any:
    if isinstance(body, list):
        return sorted(
            (
                sorted(entry),
                entry.get("authenticator_type"),
                entry.get("active"),
                entry.get("oob_channel"),
            )
            for entry in body
        )
    if isinstance(body, dict):
        return sorted(body)
    return body


@pytest.mark.skipif(not RECORDED.is_dir(), reason=f"recorded fixtures not found at {RECORDED}")
def test_every_recording_has_a_scenario() -> None:
    """Each recorded fixture is replayed by one scenario here."""
    assert {p.stem for p in _recordings()} == set(SCENARIOS)


@pytest.mark.skipif(not RECORDED.is_dir(), reason=f"recorded fixtures not found at {RECORDED}")
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_recording(name: str, make_client: MakeClient, clock: ManualClock) -> None:
    """The emulator answers like the recorded tenant: status, keys, error and description."""
    recorded = loads((RECORDED / f"{name}.json").read_bytes())["response"]
    status, body = await SCENARIOS[name](make_client, clock)
    assert status == recorded["status"]
    assert _shape(body) == _shape(recorded["body"])
    if isinstance(recorded["body"], dict) and "error" in recorded["body"]:
        assert body["error"] == recorded["body"]["error"]
        assert body["error_description"] == recorded["body"]["error_description"]
