"""SMS, voice and email: codes to the inbox, the mfa-oob grant with binding_code."""

from __future__ import annotations

import pytest

from flowengine.clock import ManualClock
from flowengine.emulator.config import BucketLimit, Limits
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import OOB, associate, challenge, grant, json_of, mfa_token, state_of

USERS = {
    "sms": ("carol@example.com", "carol-pw"),
    "email": ("dave@example.com", "dave-pw"),
}


async def _challenge(client: Client, username: str, pw: str, **params: str) -> tuple[str, str]:
    token = await mfa_token(client, username, pw)
    response = await challenge(client, token, challenge_type="oob", **params)
    body = await json_of(response)
    assert response.status == 200, body
    return token, body["oob_code"]


def _last_code(client: Client, username: str) -> str:
    return state_of(client).inbox(username)[-1].code


@pytest.mark.parametrize("channel", ["sms", "email"])
async def test_challenge_sends_code(client: Client, channel: str) -> None:
    """An oob challenge answers binding_method prompt and puts a 6-digit code in the inbox."""
    username, pw = USERS[channel]
    token = await mfa_token(client, username, pw)
    response = await challenge(client, token, challenge_type="oob")
    body = await json_of(response)
    assert set(body) == {"challenge_type", "oob_code", "binding_method"}
    assert body["binding_method"] == "prompt"
    (message,) = state_of(client).inbox(username)
    assert message.channel == channel
    assert len(message.code) == 6
    assert message.code.isdigit()


async def test_voice_challenge_by_id(client: Client) -> None:
    """Challenging the voice twin sends the code by voice to the same phone."""
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    user = state_of(client).user("carol@example.com")
    assert user is not None
    voice_id = next(a for a in user.authenticators if a.startswith("voice|"))
    response = await challenge(client, token, challenge_type="oob", authenticator_id=voice_id)
    assert response.status == 200
    (message,) = state_of(client).inbox("carol@example.com")
    assert (message.channel, message.to) == ("voice", "+15550000003")


@pytest.mark.parametrize("channel", ["sms", "email"])
async def test_binding_code_gives_tokens(client: Client, channel: str) -> None:
    """The right binding code yields tokens."""
    username, pw = USERS[channel]
    token, oob_code = await _challenge(client, username, pw)
    response = await grant(
        client, OOB, token, oob_code=oob_code, binding_code=_last_code(client, username)
    )
    assert response.status == 200
    assert "access_token" in await json_of(response)


async def test_wrong_binding_code(client: Client) -> None:
    """A wrong binding code is 403 invalid_grant Invalid binding_code."""
    token, oob_code = await _challenge(client, "carol@example.com", "carol-pw")
    code = _last_code(client, "carol@example.com")
    wrong = "000000" if code != "000000" else "111111"
    response = await grant(client, OOB, token, oob_code=oob_code, binding_code=wrong)
    assert response.status == 403
    assert await json_of(response) == {
        "error": "invalid_grant",
        "error_description": "Invalid binding_code.",
    }


async def test_missing_binding_code(client: Client) -> None:
    """A prompt challenge without binding_code is 400 invalid_request."""
    token, oob_code = await _challenge(client, "carol@example.com", "carol-pw")
    response = await grant(client, OOB, token, oob_code=oob_code)
    assert response.status == 400


async def test_binding_code_single_use(client: Client) -> None:
    """An oob_code works once."""
    token, oob_code = await _challenge(client, "carol@example.com", "carol-pw")
    code = _last_code(client, "carol@example.com")
    assert (await grant(client, OOB, token, oob_code=oob_code, binding_code=code)).status == 200
    again = await grant(client, OOB, token, oob_code=oob_code, binding_code=code)
    assert again.status == 403
    assert (await json_of(again))["error_description"] == "Invalid oob_code."


async def test_code_expires_after_five_minutes(client: Client, clock: ManualClock) -> None:
    """A code is valid 5 minutes."""
    token, oob_code = await _challenge(client, "carol@example.com", "carol-pw")
    code = _last_code(client, "carol@example.com")
    clock.advance(300)
    response = await grant(client, OOB, token, oob_code=oob_code, binding_code=code)
    assert response.status == 401
    assert (await json_of(response))["error"] == "expired_token"


async def test_oob_code_of_other_session(client: Client) -> None:
    """An oob_code is bound to the mfa_token that challenged."""
    _token, oob_code = await _challenge(client, "carol@example.com", "carol-pw")
    other = await mfa_token(client, "carol@example.com", "carol-pw")
    code = _last_code(client, "carol@example.com")
    response = await grant(client, OOB, other, oob_code=oob_code, binding_code=code)
    assert (await json_of(response))["error_description"] == "Invalid oob_code."


async def test_garbage_oob_code(client: Client) -> None:
    """A garbage oob_code is invalid_grant Invalid oob_code."""
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    response = await grant(client, OOB, token, oob_code="nope", binding_code="123456")
    assert (await json_of(response))["error_description"] == "Invalid oob_code."


async def test_failed_binding_codes_share_the_bucket(client: Client) -> None:
    """Wrong binding codes spend the failed-code bucket: the 11th attempt is locked out."""
    token, oob_code = await _challenge(client, "carol@example.com", "carol-pw")
    code = _last_code(client, "carol@example.com")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(10):
        await grant(client, OOB, token, oob_code=oob_code, binding_code=wrong)
    response = await grant(client, OOB, token, oob_code=oob_code, binding_code=code)
    assert response.status == 429
    assert (await json_of(response))["error"] == "too_many_attempts"


async def test_sms_send_limit(make_client: MakeClient, clock: ManualClock) -> None:
    """SMS sends are limited per user (here 2) and refill over time."""
    client = await make_client(limits=Limits(sms_sends=BucketLimit(burst=2, refill_every=3600)))
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    for _ in range(2):
        assert (await challenge(client, token, challenge_type="oob")).status == 200
    response = await challenge(client, token, challenge_type="oob")
    assert response.status == 429
    assert (await json_of(response))["error"] == "too_many_requests"
    clock.advance(3600)
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    assert (await challenge(client, token, challenge_type="oob")).status == 200


async def test_email_send_limit(make_client: MakeClient) -> None:
    """Email sends are limited per user."""
    client = await make_client(limits=Limits(email_sends=BucketLimit(burst=1, refill_every=60)))
    token = await mfa_token(client, "dave@example.com", "dave-pw")
    await challenge(client, token, challenge_type="oob")
    assert (await challenge(client, token, challenge_type="oob")).status == 429


async def test_enroll_sms_creates_voice_twin_and_sends(client: Client) -> None:
    """Associating sms sends a code and lists sms and voice inactive with one suffix."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(
        client,
        token,
        authenticator_types=["oob"],
        oob_channels=["sms"],
        phone_number="+15550000001",
    )
    body = await json_of(response)
    assert set(body) == {
        "authenticator_type",
        "binding_method",
        "recovery_codes",
        "oob_channel",
        "oob_code",
    }
    assert body["oob_channel"] == "sms"
    user = state_of(client).user("alice@example.com")
    assert user is not None
    kinds = sorted(a.split("|")[0] for a in user.authenticators)
    assert kinds == ["recovery-code", "sms", "voice"]
    assert not any(a.active for a in user.authenticators.values())
    assert state_of(client).inbox("alice@example.com")[0].to == "+15550000001"


async def test_enroll_sms_without_voice_factor(make_client: MakeClient) -> None:
    """With voice disabled, sms enrollment makes no voice twin."""
    client = await make_client(factors=frozenset({"sms"}))
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    await associate(
        client,
        token,
        authenticator_types=["oob"],
        oob_channels=["sms"],
        phone_number="+15550000001",
    )
    user = state_of(client).user("alice@example.com")
    assert user is not None
    assert sorted(a.split("|")[0] for a in user.authenticators) == ["recovery-code", "sms"]


async def test_enroll_sms_confirm(client: Client) -> None:
    """The binding code confirms the sms enrollment, its twin and the recovery code."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(
        await associate(
            client,
            token,
            authenticator_types=["oob"],
            oob_channels=["voice"],
            phone_number="+15550000001",
        )
    )
    code = _last_code(client, "alice@example.com")
    response = await grant(client, OOB, token, oob_code=body["oob_code"], binding_code=code)
    assert response.status == 200
    user = state_of(client).user("alice@example.com")
    assert user is not None
    assert all(a.active for a in user.authenticators.values())


async def test_enroll_email_uses_user_address(client: Client) -> None:
    """Email enrollment without an address uses the user's email."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(
        await associate(client, token, authenticator_types=["oob"], oob_channels=["email"])
    )
    assert body["binding_method"] == "prompt"
    assert state_of(client).inbox("alice@example.com")[0].to == "alice@example.com"


async def test_enroll_email_other_address(client: Client) -> None:
    """Email enrollment may name another address."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    await associate(
        client,
        token,
        authenticator_types=["oob"],
        oob_channels=["email"],
        email="other@example.org",
    )
    assert state_of(client).inbox("alice@example.com")[0].to == "other@example.org"


async def test_missing_oob_code(client: Client) -> None:
    """mfa-oob without oob_code is 400 invalid_request."""
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    response = await grant(client, OOB, token)
    assert (await json_of(response))["error_description"] == "Missing required parameter: oob_code"
