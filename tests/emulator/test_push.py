"""Push (auth0 channel): polling, approve, reject, slow_down, policies, enrollment."""

from __future__ import annotations

from flowengine.clock import ManualClock
from flowengine.emulator.config import ErrorChoices
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import (
    OOB,
    OTP,
    associate,
    challenge,
    grant,
    json_of,
    mfa_token,
    otp_now,
    state_of,
)

PENDING = {
    "error": "authorization_pending",
    "error_description": "Authorization pending: please repeat the request in a few seconds.",
}
REJECTED = {"error": "access_denied", "error_description": "MFA Authorization rejected."}


async def _push(client: Client) -> tuple[str, str]:
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    response = await challenge(client, token, challenge_type="oob")
    body = await json_of(response)
    assert set(body) == {"challenge_type", "oob_code"}
    return token, body["oob_code"]


async def test_pending_until_answered(client: Client) -> None:
    """Polling before an answer is 400 authorization_pending."""
    token, oob_code = await _push(client)
    response = await grant(client, OOB, token, oob_code=oob_code)
    assert response.status == 400
    assert await json_of(response) == PENDING


async def test_approved_gives_tokens(client: Client) -> None:
    """After approval the poll yields tokens."""
    token, oob_code = await _push(client)
    assert state_of(client).approve_push("erin@example.com") == 1
    response = await grant(client, OOB, token, oob_code=oob_code)
    assert response.status == 200


async def test_rejected_is_final(client: Client) -> None:
    """After rejection every poll is 400 access_denied MFA Authorization rejected."""
    token, oob_code = await _push(client)
    state_of(client).reject_push("erin@example.com")
    for _ in range(2):
        response = await grant(client, OOB, token, oob_code=oob_code)
        assert response.status == 400
        assert await json_of(response) == REJECTED


async def test_slow_down_after_twelve_polls(client: Client, clock: ManualClock) -> None:
    """The 13th poll within a minute is slow_down; 5 s later polling works again."""
    token, oob_code = await _push(client)
    for _ in range(12):
        assert (await json_of(await grant(client, OOB, token, oob_code=oob_code)))[
            "error"
        ] == "authorization_pending"
    response = await grant(client, OOB, token, oob_code=oob_code)
    assert response.status == 429
    assert (await json_of(response))["error"] == "slow_down"
    clock.advance(5)
    assert (await json_of(await grant(client, OOB, token, oob_code=oob_code)))[
        "error"
    ] == "authorization_pending"


async def test_slow_down_status_is_configurable(make_client: MakeClient) -> None:
    """errors.slow_down_status changes the slow_down status."""
    client = await make_client(errors=ErrorChoices(slow_down_status=400))
    token, oob_code = await _push(client)
    for _ in range(12):
        await grant(client, OOB, token, oob_code=oob_code)
    assert (await grant(client, OOB, token, oob_code=oob_code)).status == 400


async def test_push_expires(client: Client, clock: ManualClock) -> None:
    """A push challenge expires after 5 minutes and cannot be approved then."""
    token, oob_code = await _push(client)
    clock.advance(300)
    assert state_of(client).approve_push("erin@example.com") == 0
    response = await grant(client, OOB, token, oob_code=oob_code)
    assert (await json_of(response))["error"] == "expired_token"


async def test_auto_approve_policy(client: Client, clock: ManualClock) -> None:
    """Policy approve after 2 s: pending before, tokens after."""
    state_of(client).set_push_policy("approve", 2000)
    token, oob_code = await _push(client)
    assert (await grant(client, OOB, token, oob_code=oob_code)).status == 400
    clock.advance(2)
    assert (await grant(client, OOB, token, oob_code=oob_code)).status == 200


async def test_auto_reject_policy_per_user(client: Client) -> None:
    """A per-user reject policy answers at once."""
    state_of(client).set_push_policy("reject", 0, "erin@example.com")
    token, oob_code = await _push(client)
    assert await json_of(await grant(client, OOB, token, oob_code=oob_code)) == REJECTED


async def test_never_policy_stays_pending(client: Client, clock: ManualClock) -> None:
    """Policy never leaves the push pending until it expires."""
    state_of(client).set_push_policy("never")
    token, oob_code = await _push(client)
    clock.advance(60)
    assert await json_of(await grant(client, OOB, token, oob_code=oob_code)) == PENDING


async def test_push_send_limit(client: Client) -> None:
    """At most 5 push notifications per user per minute."""
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    for _ in range(5):
        assert (await challenge(client, token, challenge_type="oob")).status == 200
    assert (await challenge(client, token, challenge_type="oob")).status == 429


async def test_push_twin_otp(client: Client, clock: ManualClock) -> None:
    """A push user can also answer with the TOTP code of its otp twin."""
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    user = state_of(client).user("erin@example.com")
    assert user is not None
    twin = next(a for a in user.authenticators.values() if a.factor == "otp")
    assert twin.secret is not None
    response = await grant(client, OTP, token, otp=otp_now(twin.secret, clock))
    assert response.status == 200


async def test_push_enrollment(client: Client) -> None:
    """Push enrollment: no binding_method; push and its otp twin stay inactive until approved."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(client, token, authenticator_types=["oob"], oob_channels=["auth0"])
    body = await json_of(response)
    assert set(body) == {
        "authenticator_type",
        "barcode_uri",
        "oob_channel",
        "oob_code",
        "recovery_codes",
    }
    assert "enrollment_tx_id=" in body["barcode_uri"]
    assert "base_url=http%3A%2F%2F127.0.0.1" in body["barcode_uri"]
    assert (await grant(client, OOB, token, oob_code=body["oob_code"])).status == 400
    state_of(client).approve_push("alice@example.com")
    assert (await grant(client, OOB, token, oob_code=body["oob_code"])).status == 200
    user = state_of(client).user("alice@example.com")
    assert user is not None
    assert sorted((a.factor, a.active) for a in user.authenticators.values()) == [
        ("otp", True),
        ("push", True),
        ("recovery-code", True),
    ]


async def test_push_enrollment_expires(client: Client, clock: ManualClock) -> None:
    """The enrollment QR must be scanned within 5 minutes."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(
        await associate(client, token, authenticator_types=["oob"], oob_channels=["auth0"])
    )
    clock.advance(300)
    assert state_of(client).approve_push("alice@example.com") == 0
    response = await grant(client, OOB, token, oob_code=body["oob_code"])
    assert response.status == 401
