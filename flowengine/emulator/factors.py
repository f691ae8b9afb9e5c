"""MFA logic: enroll (associate), challenge, and verify otp / oob / recovery codes.

Synchronous functions over :class:`EmulatorState` that raise :class:`OAuthError` for
every error answer of reference §5-§7; the handlers only parse and serialize.
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from typing import Any
from urllib.parse import quote

from flowengine.emulator.http import OAuthError
from flowengine.emulator.issue import Authorization
from flowengine.emulator.store import Authenticator, Challenge, EmulatorState, User
from flowengine.emulator.tokens import (
    ExpiredToken,
    MalformedToken,
    hotp_keyed,
    random_recovery_code,
)

__all__ = [
    "OOB_CODE",
    "associate",
    "challenge",
    "verify_oob",
    "verify_otp",
    "verify_recovery_code",
]

OOB_CODE = "oob_code"
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SIX_DIGITS = re.compile(r"[0-9]{6}")
_CHANNEL_FACTOR = {"sms": "sms", "voice": "voice", "email": "email", "auth0": "push"}


def _lockout(state: EmulatorState) -> OAuthError:
    errors = state.settings.errors
    return OAuthError(
        errors.code_lockout_status, errors.code_lockout_error, errors.code_lockout_description
    )


def _invalid(state: EmulatorState, what: str) -> OAuthError:
    return OAuthError(
        state.settings.errors.invalid_code_status, "invalid_grant", f"Invalid {what}."
    )


def _send_limited(state: EmulatorState) -> OAuthError:
    errors = state.settings.errors
    return OAuthError(
        errors.send_limit_status, errors.send_limit_error, errors.send_limit_description
    )


def _seal(state: EmulatorState, challenge: Challenge) -> str:
    return state.sealer.seal(OOB_CODE, [challenge.session_id, challenge.id], challenge.expires_at)


def _send(
    state: EmulatorState,
    user: User,
    authenticator: Authenticator,
    session_id: str,
    *,
    enrollment: bool,
) -> Challenge:
    """Send a code (sms/voice/email) or a push; the challenge that verifies it."""
    now = state.clock.time()
    key = user.username.lower()
    lifetimes = state.settings.lifetimes
    channel = authenticator.oob_channel or ""
    if channel == "auth0":
        if not enrollment and not state.push_sends.take(key, now):
            raise _send_limited(state)
        lifetime = lifetimes.push_enrollment if enrollment else lifetimes.code
        code = None
    else:
        bucket = state.email_sends if channel == "email" else state.sms_sends
        if not bucket.take(key, now):
            raise _send_limited(state)
        lifetime = lifetimes.code
        code = f"{secrets.randbelow(1_000_000):06d}"
        to = authenticator.email if channel == "email" else authenticator.phone_number
        state.deliver(user, channel, to or "", code)
    return state.add_challenge(
        Challenge(
            session_id=session_id,
            username=user.username,
            authenticator_id=authenticator.id,
            channel=channel,
            code=code,
            expires_at=now + lifetime,
            enrollment=enrollment,
        )
    )


def _list_param(params: dict[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [part for v in value for part in v.replace(",", " ").split()]
    raise OAuthError(400, "invalid_request", f"Parameter {name} must be an array of strings.")


def associate(
    state: EmulatorState, base: str, user: User, session_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Enroll a new (inactive) authenticator; the 200 body of ``/mfa/associate``."""
    types = _list_param(params, "authenticator_types")
    if not types:
        raise OAuthError(400, "invalid_request", "Missing required parameter: authenticator_types")
    if types == ["otp"]:
        factor = "otp"
    elif types == ["oob"]:
        channels = _list_param(params, "oob_channels")
        if not channels:
            raise OAuthError(400, "invalid_request", "Missing required parameter: oob_channels")
        if len(channels) != 1 or channels[0] not in _CHANNEL_FACTOR:
            raise OAuthError(
                400,
                "unsupported_authenticator_type",
                f"Unsupported oob_channels: {' '.join(channels)}",
            )
        factor = _CHANNEL_FACTOR[channels[0]]
    else:
        raise OAuthError(
            400,
            "unsupported_authenticator_type",
            f"Unsupported authenticator_types: {' '.join(types)}",
        )
    if factor not in state.settings.factors:
        raise OAuthError(
            400, "unsupported_authenticator_type", f"The {factor} factor is not enabled."
        )
    phone = email = None
    if factor in ("sms", "voice"):
        phone = params.get("phone_number")
        if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
            raise OAuthError(
                400, "invalid_request", "phone_number must be an E.164 number, e.g. +15551234567"
            )
    elif factor == "email":
        email = params.get("email") or user.email
        if not isinstance(email, str) or not _EMAIL.fullmatch(email):
            raise OAuthError(400, "invalid_request", "email must be an email address")
    recovery_code = None
    if not user.enrolled_ever and state.settings.recovery_codes:
        recovery_code = user.recovery_code = random_recovery_code()
        state.new_recovery_authenticator(user)
    user.enrolled_ever = True
    authenticator = state.new_authenticator(user, factor, phone_number=phone, email=email)
    user.pending.setdefault(session_id, []).append(authenticator.id)
    body: dict[str, Any] = {"authenticator_type": authenticator.authenticator_type}
    label = f"{quote(state.settings.friendly_name)}:{quote(user.email or user.username, safe='')}"
    if factor == "otp":
        secret = authenticator.secret or ""
        body["secret"] = secret
        body["barcode_uri"] = (
            f"otpauth://totp/{label}?secret={secret}&issuer={quote(state.settings.friendly_name)}"
            "&algorithm=SHA1&digits=6&period=30"
        )
        if recovery_code:
            body["recovery_codes"] = [recovery_code]
        return body
    challenge = _send(state, user, authenticator, session_id, enrollment=True)
    if factor == "push":
        body["barcode_uri"] = (
            f"otpauth://totp/{label}?enrollment_tx_id={challenge.id}"
            f"&base_url={quote(base, safe='')}"
        )
    else:
        body["binding_method"] = "prompt"
    if recovery_code:
        body["recovery_codes"] = [recovery_code]
    body["oob_channel"] = authenticator.oob_channel
    body["oob_code"] = _seal(state, challenge)
    return body


def challenge(
    state: EmulatorState, user: User, auth: Authorization, params: dict[str, Any]
) -> dict[str, Any]:
    """Pick the authenticator and send the challenge; the 200 body of ``/mfa/challenge``."""
    raw_types = params.get("challenge_type")
    if raw_types is None or raw_types == "":
        types = {"otp", "oob"}
    elif isinstance(raw_types, str):
        types = set(raw_types.split())
        if not types <= {"otp", "oob"}:
            raise OAuthError(
                400, "unsupported_challenge_type", f"Unsupported challenge_type: {raw_types}"
            )
    else:
        raise OAuthError(400, "invalid_request", "Parameter challenge_type must be a string.")
    enabled = state.settings.factors
    active = [a for a in user.active_factors() if a.factor in enabled]
    if not user.active_factors():
        errors = state.settings.errors
        raise OAuthError(400, errors.not_enrolled_error, errors.not_enrolled_description)
    authenticator_id = params.get("authenticator_id")
    if authenticator_id:
        chosen = user.authenticators.get(str(authenticator_id))
        if chosen is None or not chosen.active or chosen.factor == "recovery-code":
            raise OAuthError(400, "invalid_authenticator", "Invalid authenticator ID")
        if chosen.factor not in enabled or chosen.authenticator_type not in types:
            raise OAuthError(
                400,
                "unsupported_challenge_type",
                "The authenticator does not support the challenge type.",
            )
    else:
        matching = [a for a in active if a.authenticator_type in types]
        if not matching:
            raise OAuthError(
                400, "unsupported_challenge_type", "User is not enrolled with guardian"
            )
        chosen = matching[0]
    if chosen.factor == "otp":
        return {"challenge_type": "otp"}
    sent = _send(state, user, chosen, auth.session_id, enrollment=False)
    body: dict[str, Any] = {"challenge_type": "oob", "oob_code": _seal(state, sent)}
    if not sent.is_push:
        body["binding_method"] = "prompt"
    return body


@functools.cache
def _step_offsets(window: int) -> tuple[int, ...]:
    """TOTP steps to try around the current one, nearest first: 0, -1, 1, -2, 2, …"""
    return tuple(sorted(range(-window, window + 1), key=abs))


def verify_otp(state: EmulatorState, user: User, auth: Authorization, otp: str) -> Authenticator:
    """Check a TOTP code (single use, failed-code bucket); activates a pending enrollment."""
    now = state.clock.time()
    user_key = user.username.lower()
    if not state.failed_codes.available(user_key, now):
        raise _lockout(state)
    if _SIX_DIGITS.fullmatch(otp):
        pending = user.pending.get(auth.session_id, ())
        counter = int(now // 30)
        offsets = _step_offsets(state.settings.totp_window)
        for authenticator in user.authenticators.values():
            mac = authenticator.totp_mac
            if mac is None or not (authenticator.active or authenticator.id in pending):
                continue
            for offset in offsets:
                step = counter + offset
                if step > authenticator.last_counter and hmac.compare_digest(
                    hotp_keyed(mac, step), otp
                ):
                    authenticator.last_counter = step
                    if not authenticator.active:
                        state.activate(user, authenticator)
                    return authenticator
    state.failed_codes.take(user_key, now)
    raise _invalid(state, "otp_code")


def verify_oob(
    state: EmulatorState, user: User, auth: Authorization, oob_code: str, binding_code: str | None
) -> Challenge:
    """Check an oob_code (push answered, or binding code); activates a pending enrollment."""
    now = state.clock.time()
    try:
        session_id, challenge_id = state.sealer.unseal(OOB_CODE, oob_code, now)
    except ExpiredToken:
        raise OAuthError(401, "expired_token", "oob_code is expired") from None
    except (MalformedToken, ValueError):
        raise _invalid(state, "oob_code") from None
    found = state.challenges.get(challenge_id)
    if session_id != auth.session_id or found is None or found.state == "used":
        raise _invalid(state, "oob_code")
    if found.expires_at <= now:
        raise OAuthError(401, "expired_token", "oob_code is expired")
    if not state.polling.take(session_id, now):
        errors = state.settings.errors
        raise OAuthError(errors.slow_down_status, "slow_down", errors.slow_down_description)
    if found.is_push:
        current = state.push_state(found, now)
        if current == "pending":
            raise OAuthError(
                400,
                "authorization_pending",
                "Authorization pending: please repeat the request in a few seconds.",
            )
        if current == "rejected":
            raise OAuthError(400, "access_denied", "MFA Authorization rejected.")
    else:
        key = user.username.lower()
        if not binding_code:
            raise OAuthError(400, "invalid_request", "Missing required parameter: binding_code")
        if not state.failed_codes.available(key, now):
            raise _lockout(state)
        if not hmac.compare_digest((found.code or "").encode(), binding_code.encode()):
            state.failed_codes.take(key, now)
            raise _invalid(state, "binding_code")
    found.state = "used"
    authenticator = user.authenticators.get(found.authenticator_id)
    if found.enrollment and authenticator is not None and not authenticator.active:
        state.activate(user, authenticator)
    return found


def verify_recovery_code(state: EmulatorState, user: User, code: str) -> str:
    """Check a recovery code (recovery bucket); returns the replacement code."""
    now = state.clock.time()
    key = user.username.lower()
    if not state.failed_recovery.available(key, now):
        raise _lockout(state)
    recovery = user.recovery_authenticator()
    current = user.recovery_code
    given = code.strip().upper().encode()
    if (
        current is not None
        and recovery is not None
        and recovery.active
        and hmac.compare_digest(current.encode(), given)
    ):
        user.recovery_code = random_recovery_code()
        return user.recovery_code
    state.failed_recovery.take(key, now)
    raise _invalid(state, "recovery_code")
