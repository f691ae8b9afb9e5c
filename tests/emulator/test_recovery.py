"""The mfa-recovery-code grant: rotation, wrong codes, its own bucket."""

from __future__ import annotations

from flowengine.clock import ManualClock
from tests.emulator.conftest import Client
from tests.emulator.helpers import (
    OTP,
    RECOVERY,
    RECOVERY_CODE,
    associate,
    grant,
    json_of,
    mfa_token,
    otp_now,
    state_of,
)


async def _bob(client: Client) -> str:
    return await mfa_token(client, "bob@example.com", "bob-pw")


async def test_recovery_code_gives_tokens_and_new_code(client: Client) -> None:
    """The recovery code yields tokens and a replacement recovery_code."""
    response = await grant(client, RECOVERY, await _bob(client), recovery_code=RECOVERY_CODE)
    body = await json_of(response)
    assert response.status == 200
    assert set(body) == {"access_token", "expires_in", "token_type", "recovery_code"}
    assert body["recovery_code"] != RECOVERY_CODE
    assert len(body["recovery_code"]) == 24


async def test_used_code_is_dead(client: Client) -> None:
    """The used code no longer works; the replacement does."""
    body = await json_of(
        await grant(client, RECOVERY, await _bob(client), recovery_code=RECOVERY_CODE)
    )
    again = await grant(client, RECOVERY, await _bob(client), recovery_code=RECOVERY_CODE)
    assert again.status == 403
    fresh = await grant(client, RECOVERY, await _bob(client), recovery_code=body["recovery_code"])
    assert fresh.status == 200


async def test_lowercase_code_accepted(client: Client) -> None:
    """Recovery codes compare case-insensitively."""
    response = await grant(
        client, RECOVERY, await _bob(client), recovery_code=RECOVERY_CODE.lower()
    )
    assert response.status == 200


async def test_wrong_code(client: Client) -> None:
    """A wrong code is 403 invalid_grant Invalid recovery_code."""
    response = await grant(client, RECOVERY, await _bob(client), recovery_code="X" * 24)
    assert response.status == 403
    assert await json_of(response) == {
        "error": "invalid_grant",
        "error_description": "Invalid recovery_code.",
    }


async def test_recovery_bucket(client: Client, clock: ManualClock) -> None:
    """After 10 wrong recovery codes the right one is locked out until a refill."""
    token = await _bob(client)
    for _ in range(10):
        await grant(client, RECOVERY, token, recovery_code="X" * 24)
    assert (await grant(client, RECOVERY, token, recovery_code=RECOVERY_CODE)).status == 429
    clock.advance(360)
    response = await grant(client, RECOVERY, await _bob(client), recovery_code=RECOVERY_CODE)
    assert response.status == 200


async def test_recovery_bucket_separate_from_codes(client: Client, clock: ManualClock) -> None:
    """Wrong recovery codes do not spend the OTP failed-code bucket."""
    token = await _bob(client)
    for _ in range(10):
        await grant(client, RECOVERY, token, recovery_code="X" * 24)
    from tests.emulator.helpers import OTP_SECRET

    assert (await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock))).status == 200


async def test_unconfirmed_recovery_code_refused(client: Client) -> None:
    """The recovery code of an unconfirmed first enrollment does not work yet."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(await associate(client, token, authenticator_types=["otp"]))
    (code,) = body["recovery_codes"]
    response = await grant(client, RECOVERY, token, recovery_code=code)
    assert response.status == 403


async def test_recovery_code_after_enrollment(client: Client, clock: ManualClock) -> None:
    """Once the first enrollment is confirmed, its recovery code logs in."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(await associate(client, token, authenticator_types=["otp"]))
    await grant(client, OTP, token, otp=otp_now(body["secret"], clock))
    (code,) = body["recovery_codes"]
    fresh = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await grant(client, RECOVERY, fresh, recovery_code=code)
    assert response.status == 200


async def test_deleting_recovery_authenticator_forgets_code(client: Client) -> None:
    """Deleting the recovery-code authenticator kills the code."""
    state = state_of(client)
    user = state.user("bob@example.com")
    assert user is not None
    recovery = user.recovery_authenticator()
    assert recovery is not None
    state.delete_authenticator(user, recovery.id)
    response = await grant(client, RECOVERY, await _bob(client), recovery_code=RECOVERY_CODE)
    assert response.status == 403


async def test_missing_recovery_code(client: Client) -> None:
    """mfa-recovery-code without recovery_code is 400 invalid_request."""
    response = await grant(client, RECOVERY, await _bob(client))
    assert response.status == 400
