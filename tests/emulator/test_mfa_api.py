"""The MFA API: list, associate, challenge and delete, with their bearer rules."""

from __future__ import annotations

import jwt

from flowengine.clock import ManualClock
from tests.emulator.conftest import Client, MakeClient
from tests.emulator.helpers import (
    OTP,
    OTP_SECRET,
    associate,
    challenge,
    grant,
    json_of,
    mfa_api_token,
    mfa_token,
    otp_now,
    password,
    state_of,
)


async def _list(client: Client, bearer: str) -> tuple[int, object]:
    response = await client.get(
        "/mfa/authenticators", headers={"Authorization": f"Bearer {bearer}"}
    )
    return response.status, await json_of(response)


async def test_list_empty_for_new_user(client: Client) -> None:
    """A user without factors has an empty list."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await client.get("/mfa/authenticators", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await json_of(response) == []


async def test_list_shows_seeded_factors(client: Client) -> None:
    """A pre-enrolled user lists its otp and recovery-code authenticators as active."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    status, body = await _list(client, token)
    assert status == 200
    assert isinstance(body, list)
    assert [(a["authenticator_type"], a["active"]) for a in body] == [
        ("otp", True),
        ("recovery-code", True),
    ]
    assert body[0]["id"].startswith("totp|dev_")
    assert set(body[0]) == {"id", "authenticator_type", "active"}


async def test_list_sms_pair_shares_suffix_and_masks_phone(client: Client) -> None:
    """An sms enrollment is listed with its voice twin, same suffix, masked phone."""
    token = await mfa_token(client, "carol@example.com", "carol-pw")
    _status, body = await _list(client, token)
    assert isinstance(body, list)
    sms, voice = body[0], body[1]
    assert sms["id"].split("|")[1] == voice["id"].split("|")[1]
    assert (sms["oob_channel"], voice["oob_channel"]) == ("sms", "voice")
    assert sms["name"] == "XXXXXXXX0003"


async def test_list_masks_email(client: Client) -> None:
    """An email authenticator's name is the masked address."""
    token = await mfa_token(client, "dave@example.com", "dave-pw")
    _status, body = await _list(client, token)
    assert isinstance(body, list)
    assert body[0]["name"] == "****@exam*******"
    assert body[0]["oob_channel"] == "email"


async def test_list_type_field_switch(make_client: MakeClient) -> None:
    """authenticator_type_field adds the type member."""
    client = await make_client(authenticator_type_field=True)
    token = await mfa_token(client, "erin@example.com", "erin-pw")
    _status, body = await _list(client, token)
    assert isinstance(body, list)
    assert [a["type"] for a in body] == ["push-notification", "otp", "recovery-code"]


async def test_list_with_mfa_api_access_token(client: Client, clock: ManualClock) -> None:
    """An access token for the MFA audience with read:authenticators lists too."""
    access = await mfa_api_token(client, clock)
    status, body = await _list(client, access)
    assert status == 200
    assert isinstance(body, list)
    assert len(body) == 2


async def test_list_access_token_without_scope(client: Client, clock: ManualClock) -> None:
    """An MFA-API token lacking read:authenticators is 403 insufficient_scope."""
    access = await mfa_api_token(client, clock, scope="enroll")
    status, body = await _list(client, access)
    assert status == 403
    assert isinstance(body, dict)
    assert body["error"] == "insufficient_scope"


async def test_list_access_token_for_other_audience(client: Client) -> None:
    """An access token for another API is 401 invalid_token."""
    body = await json_of(await password(client, "frank", "frank-pw", audience="https://api.test/"))
    status, _ = await _list(client, body["access_token"])
    assert status == 401


async def test_list_expired_access_token(client: Client, clock: ManualClock) -> None:
    """An MFA-API token is valid 10 minutes."""
    access = await mfa_api_token(client, clock)
    clock.advance(600)
    status, body = await _list(client, access)
    assert status == 401
    assert isinstance(body, dict)
    assert body["error"] == "invalid_token"


async def test_list_without_bearer(client: Client) -> None:
    """No Authorization header is 401."""
    response = await client.get("/mfa/authenticators")
    assert response.status == 401


async def test_list_tampered_mfa_token(client: Client) -> None:
    """A tampered mfa_token is 401 invalid_grant."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    status, body = await _list(client, tampered)
    assert status == 401
    assert body == {
        "error": "invalid_grant",
        "error_description": "The mfa_token provided is invalid. Try getting a new token.",
    }


async def test_list_expired_mfa_token(client: Client, clock: ManualClock) -> None:
    """An expired mfa_token is 401 expired_token."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    clock.advance(600)
    status, body = await _list(client, token)
    assert status == 401
    assert body == {"error": "expired_token", "error_description": "mfa_token is expired"}


async def test_mfa_token_lifetime_is_configurable(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """lifetimes.mfa_token sets the expiry (here 5 minutes)."""
    from flowengine.emulator.config import Lifetimes

    client = await make_client(lifetimes=Lifetimes(mfa_token=300))
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    clock.advance(299)
    assert (await _list(client, token))[0] == 200
    clock.advance(1)
    assert (await _list(client, token))[0] == 401


async def test_associate_otp_first_enrollment(client: Client) -> None:
    """The first otp association returns secret, barcode_uri and one recovery code."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(client, token, authenticator_types=["otp"])
    body = await json_of(response)
    assert response.status == 200
    assert set(body) == {"authenticator_type", "secret", "barcode_uri", "recovery_codes"}
    assert len(body["secret"]) == 32
    assert body["barcode_uri"] == (
        "otpauth://totp/flowengine%20emulator:alice%40example.com?secret="
        f"{body['secret']}&issuer=flowengine%20emulator&algorithm=SHA1&digits=6&period=30"
    )
    (code,) = body["recovery_codes"]
    assert len(code) == 24
    assert code.isalnum()
    assert code.upper() == code


async def test_associate_second_time_has_no_recovery_codes(client: Client) -> None:
    """Recovery codes come only with a user's first association."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    await associate(client, token, authenticator_types=["otp"])
    body = await json_of(await associate(client, token, authenticator_types=["otp"]))
    assert "recovery_codes" not in body


async def test_associate_without_recovery_codes_setting(make_client: MakeClient) -> None:
    """recovery_codes off: no recovery code at first enrollment."""
    client = await make_client(recovery_codes=False)
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(await associate(client, token, authenticator_types=["otp"]))
    assert "recovery_codes" not in body


async def test_unconfirmed_enrollment_listed_inactive(client: Client) -> None:
    """An unconfirmed enrollment stays listed with active false."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    await associate(client, token, authenticator_types=["otp"])
    _status, body = await _list(client, token)
    assert isinstance(body, list)
    assert {(a["authenticator_type"], a["active"]) for a in body} == {
        ("otp", False),
        ("recovery-code", False),
    }


async def test_associate_confirm_otp(client: Client, clock: ManualClock) -> None:
    """The first TOTP code confirms the enrollment and yields tokens."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    body = await json_of(await associate(client, token, authenticator_types=["otp"]))
    response = await grant(client, OTP, token, otp=otp_now(body["secret"], clock))
    assert response.status == 200
    _status, listed = await _list(client, token)
    assert isinstance(listed, list)
    assert all(a["active"] for a in listed)


async def test_associate_refused_when_enrolled(client: Client) -> None:
    """With an active factor, the mfa_token cannot associate: 403 User is already enrolled."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await associate(client, token, authenticator_types=["otp"])
    assert response.status == 403
    assert await json_of(response) == {
        "error": "access_denied",
        "error_description": "User is already enrolled.",
    }


async def test_associate_with_enroll_access_token(client: Client, clock: ManualClock) -> None:
    """An enrolled user adds a factor with an MFA-API token holding enroll."""
    access = await mfa_api_token(client, clock)
    response = await associate(client, access, authenticator_types=["otp"])
    body = await json_of(response)
    assert response.status == 200
    assert "recovery_codes" not in body


async def test_associate_access_token_without_enroll(client: Client, clock: ManualClock) -> None:
    """An MFA-API token without enroll cannot associate."""
    access = await mfa_api_token(client, clock, scope="read:authenticators")
    response = await associate(client, access, authenticator_types=["otp"])
    assert response.status == 403


async def test_associate_missing_types(client: Client) -> None:
    """authenticator_types is required."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(client, token)
    assert response.status == 400
    assert (await json_of(response))["error"] == "invalid_request"


async def test_associate_unsupported_type(client: Client) -> None:
    """An unknown authenticator type is 400 unsupported_authenticator_type."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(client, token, authenticator_types=["webauthn"])
    assert (await json_of(response))["error"] == "unsupported_authenticator_type"


async def test_associate_oob_requires_channel(client: Client) -> None:
    """oob without oob_channels is 400 invalid_request."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(client, token, authenticator_types=["oob"])
    assert (await json_of(response))["error"] == "invalid_request"


async def test_associate_disabled_factor(make_client: MakeClient) -> None:
    """A factor the tenant disabled cannot be enrolled."""
    client = await make_client(factors=frozenset({"otp"}))
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(
        client,
        token,
        authenticator_types=["oob"],
        oob_channels=["sms"],
        phone_number="+15550000001",
    )
    assert (await json_of(response))["error"] == "unsupported_authenticator_type"


async def test_associate_sms_needs_e164_phone(client: Client) -> None:
    """sms enrollment without an E.164 phone is 400 invalid_request."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(
        client, token, authenticator_types=["oob"], oob_channels=["sms"], phone_number="555"
    )
    assert response.status == 400


async def test_associate_form_body(client: Client) -> None:
    """/mfa/associate also accepts a form body."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await client.post(
        "/mfa/associate",
        data={"authenticator_types": "otp"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200


async def test_challenge_otp(client: Client) -> None:
    """Challenging an otp authenticator answers challenge_type otp."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await challenge(client, token, challenge_type="otp")
    assert response.status == 200
    assert await json_of(response) == {"challenge_type": "otp"}


async def test_challenge_by_authenticator_id(client: Client) -> None:
    """authenticator_id selects the authenticator."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    _status, listed = await _list(client, token)
    assert isinstance(listed, list)
    response = await challenge(
        client, token, challenge_type="otp", authenticator_id=listed[0]["id"]
    )
    assert await json_of(response) == {"challenge_type": "otp"}


async def test_challenge_unknown_authenticator(client: Client) -> None:
    """An unknown authenticator_id is 400 invalid_authenticator."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await challenge(client, token, authenticator_id="totp|dev_nope")
    assert response.status == 400
    assert (await json_of(response))["error"] == "invalid_authenticator"


async def test_challenge_type_mismatch(client: Client) -> None:
    """Asking oob of an otp-only user is 400 unsupported_challenge_type."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await challenge(client, token, challenge_type="oob")
    assert response.status == 400
    assert (await json_of(response))["error"] == "unsupported_challenge_type"


async def test_challenge_bad_type(client: Client) -> None:
    """An unknown challenge_type is 400 unsupported_challenge_type."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await challenge(client, token, challenge_type="carrier-pigeon")
    assert (await json_of(response))["error"] == "unsupported_challenge_type"


async def test_challenge_not_enrolled(client: Client) -> None:
    """A user without active factors is 400 association_required."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await challenge(client, token, challenge_type="otp")
    assert response.status == 400
    assert (await json_of(response))["error"] == "association_required"


async def test_challenge_not_enrolled_error_is_configurable(make_client: MakeClient) -> None:
    """errors.not_enrolled_error switches to unsupported_challenge_type."""
    from flowengine.emulator.config import ErrorChoices

    client = await make_client(errors=ErrorChoices(not_enrolled_error="unsupported_challenge_type"))
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await challenge(client, token)
    assert (await json_of(response))["error"] == "unsupported_challenge_type"


async def test_challenge_expired_mfa_token(client: Client, clock: ManualClock) -> None:
    """An expired mfa_token at /mfa/challenge is 401 expired_token."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    clock.advance(601)
    response = await challenge(client, token)
    assert response.status == 401
    assert (await json_of(response))["error"] == "expired_token"


async def test_challenge_malformed_mfa_token(client: Client) -> None:
    """A malformed mfa_token at /mfa/challenge is 403 invalid_grant Malformed mfa_token."""
    response = await challenge(client, "not-a-token")
    assert response.status == 403
    assert await json_of(response) == {
        "error": "invalid_grant",
        "error_description": "Malformed mfa_token",
    }


async def test_challenge_needs_client_secret(client: Client) -> None:
    """A confidential client must send its secret to /mfa/challenge."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await client.post("/mfa/challenge", json={"mfa_token": token, "client_id": "app"})
    assert response.status == 401


async def test_challenge_requires_client_id(client: Client) -> None:
    """client_id is required at /mfa/challenge."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await client.post("/mfa/challenge", json={"mfa_token": token})
    assert response.status == 400


async def test_challenge_token_of_other_client(client: Client) -> None:
    """An mfa_token issued to another client is refused."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await client.post("/mfa/challenge", json={"mfa_token": token, "client_id": "public"})
    assert response.status == 403


async def test_challenge_form_body(client: Client) -> None:
    """/mfa/challenge accepts a form body by default."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await client.post(
        "/mfa/challenge",
        data={"mfa_token": token, "client_id": "app", "client_secret": "app-secret"},
    )
    assert response.status == 200


async def test_challenge_form_body_refused_when_off(make_client: MakeClient) -> None:
    """challenge_accepts_form off: a form body is 400."""
    client = await make_client(challenge_accepts_form=False)
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await client.post(
        "/mfa/challenge",
        data={"mfa_token": token, "client_id": "app", "client_secret": "app-secret"},
    )
    assert response.status == 400


async def test_delete_authenticator(client: Client, clock: ManualClock) -> None:
    """DELETE with remove:authenticators answers 204 with an empty body."""
    access = await mfa_api_token(client, clock)
    user = state_of(client).user("bob@example.com")
    assert user is not None
    otp_id = next(iter(user.authenticators))
    response = await client.delete(
        f"/mfa/authenticators/{otp_id.replace('|', '%7C')}",
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.status == 204
    assert await response.read() == b""
    assert otp_id not in user.authenticators


async def test_delete_unencoded_pipe(client: Client, clock: ManualClock) -> None:
    """An id sent with a raw | works too."""
    access = await mfa_api_token(client, clock)
    user = state_of(client).user("bob@example.com")
    assert user is not None
    otp_id = next(iter(user.authenticators))
    response = await client.delete(
        f"/mfa/authenticators/{otp_id}", headers={"Authorization": f"Bearer {access}"}
    )
    assert response.status == 204


async def test_delete_unknown(client: Client, clock: ManualClock) -> None:
    """Deleting an unknown id is 404."""
    access = await mfa_api_token(client, clock)
    response = await client.delete(
        "/mfa/authenticators/totp%7Cdev_nothing", headers={"Authorization": f"Bearer {access}"}
    )
    assert response.status == 404


async def test_delete_with_mfa_token_refused(client: Client) -> None:
    """An mfa_token cannot delete: 401."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await client.delete(
        "/mfa/authenticators/totp%7Cdev_x", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 401


async def test_delete_without_remove_scope(client: Client, clock: ManualClock) -> None:
    """An MFA-API token without remove:authenticators cannot delete."""
    access = await mfa_api_token(client, clock, scope="read:authenticators")
    response = await client.delete(
        "/mfa/authenticators/totp%7Cdev_x", headers={"Authorization": f"Bearer {access}"}
    )
    assert response.status == 403


async def test_delete_sms_cascades_to_voice(client: Client) -> None:
    """Deleting sms removes its voice twin."""
    state = state_of(client)
    user = state.user("carol@example.com")
    assert user is not None
    sms_id = next(a for a in user.authenticators if a.startswith("sms|"))
    assert sorted(state.delete_authenticator(user, sms_id)) == sorted(
        [sms_id, sms_id.replace("sms|", "voice|")]
    )


async def test_delete_push_cascades_to_otp(client: Client) -> None:
    """Deleting push removes its otp twin."""
    state = state_of(client)
    user = state.user("erin@example.com")
    assert user is not None
    push_id = next(a for a in user.authenticators if a.startswith("push|"))
    removed = state.delete_authenticator(user, push_id)
    assert [r.split("|")[0] for r in removed] == ["push", "totp"]


async def test_implicit_email_authenticator(make_client: MakeClient) -> None:
    """implicit_email_authenticator lists the user's email as active, and it cannot be deleted."""
    client = await make_client(implicit_email_authenticator=True)
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    _status, body = await _list(client, token)
    assert isinstance(body, list)
    assert [(a["oob_channel"], a["active"]) for a in body] == [("email", True)]


async def test_mfa_api_token_claims(client: Client, clock: ManualClock) -> None:
    """The MFA-API access token has aud {base}/mfa/ and the requested scopes."""
    access = await mfa_api_token(client, clock, scope="read:authenticators")
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["aud"].endswith("/mfa/")
    assert claims["scope"] == "read:authenticators"
    assert claims["exp"] - claims["iat"] == 600


async def test_seeded_otp_secret(client: Client, clock: ManualClock) -> None:
    """A pre-enrolled otp secret from the tenant verifies."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await grant(client, OTP, token, otp=otp_now(OTP_SECRET, clock))
    assert response.status == 200


async def test_enrollment_with_access_token_confirmed_by_it(
    client: Client, clock: ManualClock
) -> None:
    """An otp enrolled with an MFA-API token is confirmed by the mfa-otp grant with that token."""
    access = await mfa_api_token(client, clock)
    body = await json_of(await associate(client, access, authenticator_types=["otp"]))
    response = await grant(client, OTP, access, otp=otp_now(body["secret"], clock))
    assert response.status == 200
    user = state_of(client).user("bob@example.com")
    assert user is not None
    assert all(a.active for a in user.authenticators.values())


async def test_implicit_email_cannot_be_deleted(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """The implicit email authenticator is not deletable (400)."""
    client = await make_client(implicit_email_authenticator=True)
    access = await mfa_api_token(client, clock)
    user = state_of(client).user("bob@example.com")
    assert user is not None
    email_id = next(a for a in user.authenticators if a.startswith("email|"))
    response = await client.delete(
        f"/mfa/authenticators/{email_id}", headers={"Authorization": f"Bearer {access}"}
    )
    assert response.status == 400


async def test_associate_invalid_email(client: Client) -> None:
    """An email enrollment with a malformed address is 400 invalid_request."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(
        client, token, authenticator_types=["oob"], oob_channels=["email"], email="nope"
    )
    assert (await json_of(response))["error"] == "invalid_request"


async def test_associate_types_must_be_strings(client: Client) -> None:
    """authenticator_types of the wrong JSON type is 400 invalid_request."""
    token = await mfa_token(client, "alice@example.com", "alice-pw")
    response = await associate(client, token, authenticator_types=[1])
    assert response.status == 400


async def test_challenge_type_must_be_string(client: Client) -> None:
    """A non-string challenge_type is 400 invalid_request."""
    token = await mfa_token(client, "bob@example.com", "bob-pw")
    response = await challenge(client, token, challenge_type=["otp"])
    assert (await json_of(response))["error"] == "invalid_request"
