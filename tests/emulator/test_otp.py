"""The mfa-otp grant: TOTP checks, single use, the failed-code bucket."""

from __future__ import annotations

from flowengine.clock import ManualClock
from flowengine.emulator.config import BucketLimit, ErrorChoices, Limits
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import OTP, OTP_SECRET, grant, json_of, mfa_token, otp_now

LOCKOUT = {
    "error": "too_many_attempts",
    "error_description": "Too many failed codes. Wait for some minutes before retrying.",
}


async def _bob(client: Client) -> str:
    return await mfa_token(client, "bob@example.com", "bob-pw", scope="openid profile")


async def test_valid_code_gives_tokens(client: Client, clock: ManualClock) -> None:
    """A current TOTP code yields the token set the password grant asked for."""
    token = await _bob(client)
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock))
    body = await json_of(response)
    assert response.status == 200
    assert set(body) == {"access_token", "id_token", "scope", "expires_in", "token_type"}
    assert body["scope"] == "openid profile"


async def test_previous_step_accepted(client: Client, clock: ManualClock) -> None:
    """The code of the previous 30 s step is still accepted (window 1)."""
    token = await _bob(client)
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock, -1))
    assert response.status == 200


async def test_old_step_refused(client: Client, clock: ManualClock) -> None:
    """A code two steps old is refused."""
    token = await _bob(client)
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock, -2))
    assert response.status == 403


async def test_wrong_code(client: Client) -> None:
    """A wrong code is 403 invalid_grant Invalid otp_code."""
    token = await _bob(client)
    response = await grant(client, OTP, token, otp="000000")
    assert response.status == 403
    assert await json_of(response) == {
        "error": "invalid_grant",
        "error_description": "Invalid otp_code.",
    }


async def test_invalid_code_status_is_configurable(make_client: MakeClient) -> None:
    """errors.invalid_code_status changes the status of a wrong code."""
    client = await make_client(errors=ErrorChoices(invalid_code_status=401))
    token = await _bob(client)
    response = await grant(client, OTP, token, otp="000000")
    assert response.status == 401


async def test_code_is_single_use(client: Client, clock: ManualClock) -> None:
    """The same TOTP code cannot be used twice, even with another mfa_token."""
    code = otp_now(OTP_SECRET, clock)
    first = await grant(client, OTP, await _bob(client), otp=code)
    assert first.status == 200
    second = await grant(client, OTP, await _bob(client), otp=code)
    assert second.status == 403


async def test_next_step_after_use(client: Client, clock: ManualClock) -> None:
    """After a code is used, the next step's code works."""
    await grant(client, OTP, await _bob(client), otp=otp_now(OTP_SECRET, clock))
    clock.advance(30)
    response = await grant(client, OTP, await _bob(client), otp=otp_now(OTP_SECRET, clock))
    assert response.status == 200


async def test_missing_otp(client: Client) -> None:
    """A missing otp is 400 invalid_request."""
    response = await grant(client, OTP, await _bob(client))
    assert response.status == 400


async def test_lockout_after_ten_failures(client: Client, clock: ManualClock) -> None:
    """After 10 wrong codes, even a right code gets the lockout error."""
    token = await _bob(client)
    for _ in range(10):
        assert (await grant(client, OTP, token, otp="000000")).status == 403
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock))
    assert response.status == 429
    assert await json_of(response) == LOCKOUT


async def test_lockout_refills_one_per_six_minutes(client: Client, clock: ManualClock) -> None:
    """The failed-code bucket earns one attempt back every 6 minutes."""
    token = await _bob(client)
    for _ in range(10):
        await grant(client, OTP, token, otp="000000")
    clock.advance(359)
    assert (await grant(client, OTP, token, otp="000000")).status == 429
    clock.advance(1)
    token = await _bob(client)
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock))
    assert response.status == 200


async def test_lockout_is_configurable(make_client: MakeClient) -> None:
    """The bucket size and the lockout error are settings."""
    client = await make_client(
        limits=Limits(failed_codes=BucketLimit(burst=2, refill_every=60)),
        errors=ErrorChoices(code_lockout_status=403, code_lockout_error="invalid_grant"),
    )
    token = await _bob(client)
    for _ in range(2):
        await grant(client, OTP, token, otp="000000")
    response = await grant(client, OTP, token, otp="000000")
    assert response.status == 403
    assert (await json_of(response))["error_description"] == LOCKOUT["error_description"]


async def test_expired_mfa_token(client: Client, clock: ManualClock) -> None:
    """An expired mfa_token is 401 expired_token mfa_token is expired."""
    token = await _bob(client)
    clock.advance(600)
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock))
    assert response.status == 401
    assert await json_of(response) == {
        "error": "expired_token",
        "error_description": "mfa_token is expired",
    }


async def test_malformed_mfa_token(client: Client, clock: ManualClock) -> None:
    """A malformed mfa_token is 403 invalid_grant Malformed mfa_token."""
    response = await grant(client, OTP, "Fe26.2*x*y", otp=otp_now(OTP_SECRET, clock))
    assert response.status == 403
    assert await json_of(response) == {
        "error": "invalid_grant",
        "error_description": "Malformed mfa_token",
    }


async def test_tampered_expiry_is_malformed(client: Client, clock: ManualClock) -> None:
    """Pushing the embedded expiry forward breaks the HMAC."""
    token = await _bob(client)
    parts = token.split("*")
    parts[5] = str(int(parts[5]) + 3_600_000)
    response = await grant(client, OTP, "*".join(parts), otp=otp_now(OTP_SECRET, clock))
    assert (await json_of(response))["error_description"] == "Malformed mfa_token"


async def test_mfa_token_of_other_client(client: Client, clock: ManualClock) -> None:
    """An mfa_token is bound to the client it was issued to."""
    token = await _bob(client)
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": OTP,
            "mfa_token": token,
            "otp": otp_now(OTP_SECRET, clock),
            "client_id": "public",
        },
    )
    assert response.status == 403


async def test_mfa_grant_not_allowed(client: Client, clock: ManualClock) -> None:
    """A client without the mfa-otp grant gets unauthorized_client."""
    token = await _bob(client)
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": OTP,
            "mfa_token": token,
            "otp": otp_now(OTP_SECRET, clock),
            "client_id": "narrow",
            "client_secret": "narrow-secret",
        },
    )
    assert (await json_of(response))["error"] == "unauthorized_client"


async def test_user_without_otp(client: Client) -> None:
    """A user without an otp authenticator gets invalid otp_code."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await grant(client, OTP, token, otp="123456")
    assert (await json_of(response))["error_description"] == "Invalid otp_code."


async def test_pending_enrollment_of_other_session_not_accepted(
    client: Client, clock: ManualClock
) -> None:
    """An unconfirmed otp enrollment is confirmed only by the mfa_token that made it."""
    from tests.emulator.helpers import associate

    first = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(await associate(client, first, authenticator_types=["otp"]))
    second = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await grant(client, OTP, second, otp=otp_now(body["secret"], clock))
    assert response.status == 403
