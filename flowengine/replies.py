"""Typed replies of the Authentication API, and the parsers that build them.

Parsers take a decoded JSON body (``Any``), tolerate unknown fields and the variants real
SDKs are tested against (``oob_channels`` lists, ``expires_in`` as a string, legacy
``{"code", "description"}`` errors, ``a0.*`` error codes), and raise
:class:`~flowengine.errors.ProtocolError` naming the endpoint and the status for any other
shape. Every reply class is a frozen slotted attrs class whose repr masks its secrets.

Error replies are outcomes, not exceptions: :class:`ErrorReply` carries the status, the
``error`` and ``error_description`` strings, the rate-limit headers, and a :class:`ErrorKind`
decided from the ``error`` string and description first and the status second (SDK mocks
disagree on 401 vs 403 for the same error; reference/fixtures/README.md).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final

import attrs

from flowengine.errors import ProtocolError

__all__ = [
    "Association",
    "Authenticator",
    "Challenge",
    "ErrorKind",
    "ErrorReply",
    "MfaRequired",
    "MfaRequirements",
    "NO_RATE_LIMIT",
    "RateLimit",
    "TokenSet",
    "classify",
    "parse_association",
    "parse_authenticators",
    "parse_challenge",
    "parse_error",
    "parse_mfa_required",
    "parse_rate_limit",
    "parse_token_reply",
    "parse_token_set",
]


def _masked(value: object) -> str:
    """Repr of a secret: shows whether it is there, never what it is."""
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return f"<{len(value)} masked>"
    return "'***'" if value else "''"


class ErrorKind(enum.StrEnum):
    """What an error reply means to a flow, whatever its status code."""

    ACCESS_DENIED = enum.auto()
    """A push was rejected, or access refused for good."""
    ALREADY_ENROLLED = enum.auto()
    """``/mfa/associate`` with an mfa_token while an authenticator is active."""
    AUTHORIZATION_PENDING = enum.auto()
    """Push not answered yet: poll again."""
    ENROLLMENT_REQUIRED = enum.auto()
    """The user has no authenticator the challenge can use: associate one."""
    EXPIRED_TOKEN = enum.auto()
    """The mfa_token (or a token) expired: start again from the password."""
    INVALID_CODE = enum.auto()
    """A wrong OTP, binding or recovery code."""
    INVALID_CREDENTIALS = enum.auto()
    """Wrong username or password."""
    INVALID_REQUEST = enum.auto()
    """A request the server could not accept (bad or missing parameter)."""
    MALFORMED_TOKEN = enum.auto()
    """The mfa_token is not one the server can read."""
    MFA_REQUIRED = enum.auto()
    """``mfa_required`` without an mfa_token to continue with."""
    NOT_FOUND = enum.auto()
    """404: no such authenticator or endpoint."""
    OTHER = enum.auto()
    """Anything else."""
    RATE_LIMITED = enum.auto()
    """429: over a rate limit."""
    SERVER_ERROR = enum.auto()
    """5xx."""
    SLOW_DOWN = enum.auto()
    """Polling the mfa-oob grant too fast."""
    TOO_MANY_ATTEMPTS = enum.auto()
    """Brute-force protection or the failed-code limit blocked the user."""
    UNAUTHORIZED = enum.auto()
    """401 (or an ``invalid_token``/``invalid_client``): the credentials were refused."""


#: ``(error, error_description)`` pairs that official SDKs match exactly.
_EXACT: Final[Mapping[tuple[str, str], ErrorKind]] = {
    ("invalid_grant", "Invalid otp_code."): ErrorKind.INVALID_CODE,
    ("invalid_grant", "Invalid binding_code."): ErrorKind.INVALID_CODE,
    ("invalid_grant", "Invalid recovery_code."): ErrorKind.INVALID_CODE,
    ("invalid_grant", "Invalid oob_code."): ErrorKind.INVALID_CODE,
    # Swift/Android file a push rejection under invalid_grant; Auth0 sends access_denied.
    # Either way it is final: no new code can fix it.
    ("invalid_grant", "MFA Authorization rejected."): ErrorKind.ACCESS_DENIED,
    ("invalid_grant", "Malformed mfa_token"): ErrorKind.MALFORMED_TOKEN,
    (
        "invalid_grant",
        "The mfa_token provided is invalid. Try getting a new token.",
    ): ErrorKind.MALFORMED_TOKEN,
    ("invalid_grant", "mfa_token is expired"): ErrorKind.EXPIRED_TOKEN,
    ("invalid_grant", "Wrong email or password."): ErrorKind.INVALID_CREDENTIALS,
    ("access_denied", "User is already enrolled."): ErrorKind.ALREADY_ENROLLED,
}

#: ``error`` codes whose meaning does not depend on the description.
_BY_ERROR: Final[Mapping[str, ErrorKind]] = {
    "mfa_required": ErrorKind.MFA_REQUIRED,
    "a0.mfa_required": ErrorKind.MFA_REQUIRED,
    "expired_token": ErrorKind.EXPIRED_TOKEN,
    "authorization_pending": ErrorKind.AUTHORIZATION_PENDING,
    "slow_down": ErrorKind.SLOW_DOWN,
    "too_many_requests": ErrorKind.RATE_LIMITED,
    "too_many_attempts": ErrorKind.TOO_MANY_ATTEMPTS,
    "unsupported_challenge_type": ErrorKind.ENROLLMENT_REQUIRED,
    "association_required": ErrorKind.ENROLLMENT_REQUIRED,
    "a0.mfa_registration_required": ErrorKind.ENROLLMENT_REQUIRED,
    "a0.mfa_invalid_code": ErrorKind.INVALID_CODE,
    "invalid_otp": ErrorKind.INVALID_CODE,
    "invalid_binding_code": ErrorKind.INVALID_CODE,
    "invalid_recovery_code": ErrorKind.INVALID_CODE,
    "invalid_request": ErrorKind.INVALID_REQUEST,
    "invalid_scope": ErrorKind.INVALID_REQUEST,
    "unsupported_grant_type": ErrorKind.INVALID_REQUEST,
    "invalid_token": ErrorKind.UNAUTHORIZED,
    "invalid_client": ErrorKind.UNAUTHORIZED,
    "unauthorized": ErrorKind.UNAUTHORIZED,
    "server_error": ErrorKind.SERVER_ERROR,
    "temporarily_unavailable": ErrorKind.SERVER_ERROR,
}

_BY_STATUS: Final[Mapping[int, ErrorKind]] = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.UNAUTHORIZED,
    404: ErrorKind.NOT_FOUND,
    429: ErrorKind.RATE_LIMITED,
}

#: Statuses that say what happened even when the body cannot be read.
_SELF_EXPLAINING: Final = frozenset({401, 404, 429})


def _invalid_grant(description: str) -> ErrorKind:
    text = description.lower()
    if "mfa_token" in text or "mfa token" in text:
        return ErrorKind.EXPIRED_TOKEN if "expired" in text else ErrorKind.MALFORMED_TOKEN
    if "wrong email or password" in text or "wrong username or password" in text:
        return ErrorKind.INVALID_CREDENTIALS
    if "too many" in text:
        return ErrorKind.TOO_MANY_ATTEMPTS
    if "rejected" in text:
        return ErrorKind.ACCESS_DENIED
    if any(word in text for word in ("otp", "binding", "recovery", "oob", "code")):
        return ErrorKind.INVALID_CODE
    return ErrorKind.OTHER


def classify(status: int, error: str, error_description: str) -> ErrorKind:
    """The :class:`ErrorKind` of an error reply: 5xx and 404 first, then the strings."""
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    if status == 404:
        return ErrorKind.NOT_FOUND
    kind = _EXACT.get((error, error_description))
    if kind is not None:
        return kind
    if error == "invalid_grant":
        return _invalid_grant(error_description)
    if error == "access_denied":
        if "already enrolled" in error_description.lower():
            return ErrorKind.ALREADY_ENROLLED
        return ErrorKind.UNAUTHORIZED if status == 401 else ErrorKind.ACCESS_DENIED
    if error == "invalid_token" and "expired" in error_description.lower():
        return ErrorKind.EXPIRED_TOKEN
    kind = _BY_ERROR.get(error)
    if kind is not None:
        return kind
    return _BY_STATUS.get(status, ErrorKind.OTHER)


@attrs.frozen
class RateLimit:
    """Rate-limit headers of a reply; None where a header is absent or unreadable."""

    limit: int | None = None
    """``X-RateLimit-Limit``."""
    remaining: int | None = None
    """``X-RateLimit-Remaining``."""
    reset: float | None = None
    """``X-RateLimit-Reset``: UTC epoch seconds when the bucket refills."""
    retry_after: float | None = None
    """``Retry-After`` in seconds (an HTTP date is turned into seconds from now)."""


NO_RATE_LIMIT: Final = RateLimit()
"""The :class:`RateLimit` of a reply without rate-limit headers (shared, immutable)."""


@attrs.frozen
class TokenSet:
    """A successful token grant."""

    access_token: str = attrs.field(repr=_masked)
    token_type: str = "Bearer"
    """As sent; Auth0 says ``Bearer``, some mocks ``bearer``: compare without case."""
    expires_in: int | None = None
    """Seconds (a numeric string on the wire is accepted)."""
    scope: str | None = None
    id_token: str | None = attrs.field(default=None, repr=_masked)
    refresh_token: str | None = attrs.field(default=None, repr=_masked)
    recovery_code: str | None = attrs.field(default=None, repr=_masked)
    """The replacement recovery code after a mfa-recovery-code grant."""


@attrs.frozen
class MfaRequirements:
    """``mfa_requirements`` of an ``mfa_required`` reply: factor types by purpose."""

    challenge: tuple[str, ...] = ()
    enroll: tuple[str, ...] = ()


@attrs.frozen
class MfaRequired:
    """``mfa_required`` with the mfa_token to continue the flow with."""

    mfa_token: str = attrs.field(repr=_masked)
    requirements: MfaRequirements | None = None


@attrs.frozen
class Authenticator:
    """One entry of ``GET /mfa/authenticators``."""

    id: str
    """``totp|dev_…``, ``sms|dev_…``, …"""
    authenticator_type: str
    """``otp``, ``oob`` or ``recovery-code``."""
    active: bool
    """False for an enrollment that was never confirmed."""
    oob_channel: str | None = None
    """``sms``, ``voice``, ``email`` or ``auth0`` (push) for ``oob`` authenticators."""
    name: str | None = None
    """A masked phone number or email, or a device name."""
    type: str | None = None
    """Only on some tenants: ``otp``, ``phone``, ``email``, ``push-notification``, …"""


@attrs.frozen
class Association:
    """A ``POST /mfa/associate`` answer: what to confirm the enrollment with."""

    authenticator_type: str
    secret: str | None = attrs.field(default=None, repr=_masked)
    """The TOTP secret (otp)."""
    barcode_uri: str | None = attrs.field(default=None, repr=_masked)
    """``otpauth://`` URI (otp and push); it contains the secret."""
    oob_code: str | None = attrs.field(default=None, repr=_masked)
    oob_channel: str | None = None
    binding_method: str | None = None
    """``prompt`` when a code is sent to the user; None for push."""
    recovery_codes: tuple[str, ...] = attrs.field(default=(), repr=_masked)
    """Only on a user's first enrollment."""


@attrs.frozen
class Challenge:
    """A ``POST /mfa/challenge`` answer."""

    challenge_type: str
    """``otp`` or ``oob``."""
    oob_code: str | None = attrs.field(default=None, repr=_masked)
    binding_method: str | None = None
    """``prompt`` for sms/voice/email; None for push."""


@attrs.frozen
class ErrorReply:
    """An error answer of the API: an outcome for the flow to act on, not an exception."""

    endpoint: str
    """``"POST /oauth/token"``, ``"GET /mfa/authenticators"``, …"""
    status: int
    error: str
    """The ``error`` (or legacy ``code``) string; empty when the body had none."""
    error_description: str
    rate_limit: RateLimit = NO_RATE_LIMIT
    kind: ErrorKind = attrs.field(init=False)
    """Decided by :func:`classify` from the other fields."""

    @kind.default
    def _classify(self) -> ErrorKind:
        return classify(self.status, self.error, self.error_description)


# --- parsing -------------------------------------------------------------------------------


def _fail(endpoint: str, status: int, what: str) -> ProtocolError:
    return ProtocolError(
        f"{endpoint} answered {status} with {what}", endpoint=endpoint, status=status
    )


def _object(body: Any, endpoint: str, status: int) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _fail(endpoint, status, f"a JSON {type(body).__name__} where an object was expected")
    return body


def _req_str(body: dict[str, Any], key: str, endpoint: str, status: int) -> str:
    value = body.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None:
        raise _fail(endpoint, status, f"no {key!r}")
    if value == "":
        raise _fail(endpoint, status, f"an empty {key!r}")
    raise _fail(endpoint, status, f"{key!r} of type {type(value).__name__} instead of a string")


def _opt_str(body: dict[str, Any], key: str, endpoint: str, status: int) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _fail(endpoint, status, f"{key!r} of type {type(value).__name__} instead of a string")


def _str_tuple(value: Any, key: str, endpoint: str, status: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _fail(endpoint, status, f"{key!r} that is not a list of strings")


def _expires_in(value: Any, endpoint: str, status: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number: float | None = None
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is not None and math.isfinite(number):
        return int(number)
    raise _fail(endpoint, status, "an 'expires_in' that is not a number of seconds")


def parse_token_set(body: Any, *, endpoint: str, status: int) -> TokenSet:
    """A 2xx token answer as a :class:`TokenSet`."""
    if type(body) is dict:
        # The usual answer, checked in one expression; any other takes the long way below,
        # which says what is wrong (and accepts the same answers).
        get = body.get
        access, token_type = get("access_token"), get("token_type")
        expires, scope, id_token = get("expires_in"), get("scope"), get("id_token")
        refresh, recovery = get("refresh_token"), get("recovery_code")
        if (
            type(access) is str
            and access
            and type(token_type) is str
            and token_type
            and (expires is None or type(expires) is int)
            and (scope is None or type(scope) is str)
            and (id_token is None or type(id_token) is str)
            and (refresh is None or type(refresh) is str)
            and (recovery is None or type(recovery) is str)
        ):
            return TokenSet(access, token_type, expires, scope, id_token, refresh, recovery)
    obj = _object(body, endpoint, status)
    return TokenSet(
        _req_str(obj, "access_token", endpoint, status),
        _req_str(obj, "token_type", endpoint, status),
        _expires_in(obj.get("expires_in"), endpoint, status),
        _opt_str(obj, "scope", endpoint, status),
        _opt_str(obj, "id_token", endpoint, status),
        _opt_str(obj, "refresh_token", endpoint, status),
        _opt_str(obj, "recovery_code", endpoint, status),
    )


def _factor_types(value: Any, key: str, endpoint: str, status: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(endpoint, status, f"'mfa_requirements.{key}' that is not a list")
    types: list[str] = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            types.append(item["type"])
        elif isinstance(item, str):
            types.append(item)
        else:
            raise _fail(endpoint, status, f"an entry of 'mfa_requirements.{key}' without a type")
    return tuple(types)


def parse_mfa_required(body: Any, *, endpoint: str, status: int) -> MfaRequired:
    """An ``mfa_required`` answer that carries an mfa_token."""
    obj = _object(body, endpoint, status)
    token = _req_str(obj, "mfa_token", endpoint, status)
    raw = obj.get("mfa_requirements")
    if raw is None:
        return MfaRequired(token)
    if not isinstance(raw, dict):
        raise _fail(endpoint, status, "'mfa_requirements' that is not an object")
    requirements = MfaRequirements(
        _factor_types(raw.get("challenge"), "challenge", endpoint, status),
        _factor_types(raw.get("enroll"), "enroll", endpoint, status),
    )
    return MfaRequired(token, requirements)


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit:
    """``X-RateLimit-*`` and ``Retry-After`` headers; unreadable values become None."""
    limit = headers.get("X-RateLimit-Limit")
    remaining = headers.get("X-RateLimit-Remaining")
    reset = headers.get("X-RateLimit-Reset")
    retry_after = headers.get("Retry-After")
    if limit is None and remaining is None and reset is None and retry_after is None:
        return NO_RATE_LIMIT
    return RateLimit(_int(limit), _int(remaining), _float(reset), _retry_after(retry_after))


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _retry_after(text: str | None) -> float | None:
    seconds = _float(text)
    if seconds is not None or text is None:
        return seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_strings(body: Any) -> tuple[str, str] | None:
    """``(error, description)`` of an error body, or None when it has no readable error."""
    if not isinstance(body, dict):
        return None
    error = body.get("error", body.get("code"))
    if not isinstance(error, str):
        return None
    description = body.get("error_description", body.get("description", body.get("message")))
    if description is None:
        description = ""
    elif not isinstance(description, str):
        return None
    return error, description


def parse_error(
    body: Any, *, endpoint: str, status: int, rate_limit: RateLimit = NO_RATE_LIMIT
) -> ErrorReply:
    """An error answer as an :class:`ErrorReply`.

    A body without a readable ``error`` (or ``code``) string is a :class:`ProtocolError`,
    except for 401, 404, 429 and 5xx, whose status says what happened (proxies and load
    balancers answer those with bodies of their own): those give an ``ErrorReply`` with
    empty strings. Pass ``body=None`` for a body that was not JSON.
    """
    strings = _error_strings(body)
    if strings is None:
        if status in _SELF_EXPLAINING or status >= 500:
            return ErrorReply(endpoint, status, "", "", rate_limit)
        if body is None:
            raise _fail(endpoint, status, "a body that is not JSON")
        raise _fail(endpoint, status, "an error body without an 'error' string")
    return ErrorReply(endpoint, status, strings[0], strings[1], rate_limit)


def parse_token_reply(
    body: Any, *, endpoint: str, status: int, rate_limit: RateLimit = NO_RATE_LIMIT
) -> TokenSet | MfaRequired | ErrorReply:
    """Any answer of a token grant: tokens, ``mfa_required`` with a token, or an error."""
    if 200 <= status < 300:
        return parse_token_set(body, endpoint=endpoint, status=status)
    if (
        isinstance(body, dict)
        and body.get("error") in ("mfa_required", "a0.mfa_required")
        and body.get("mfa_token") is not None
    ):
        return parse_mfa_required(body, endpoint=endpoint, status=status)
    return parse_error(body, endpoint=endpoint, status=status, rate_limit=rate_limit)


def _authenticator(item: Any, endpoint: str, status: int) -> Authenticator:
    if type(item) is dict:
        # The usual entry in one expression; any other takes the long way below.
        get = item.get
        ident, kind, active = get("id"), get("authenticator_type"), get("active")
        channel, name, typ = get("oob_channel"), get("name"), get("type")
        if (
            type(ident) is str
            and ident
            and type(kind) is str
            and kind
            and type(active) is bool
            and (type(channel) is str or (channel is None and "oob_channels" not in item))
            and (name is None or type(name) is str)
            and (typ is None or type(typ) is str)
        ):
            return Authenticator(ident, kind, active, channel, name, typ)
    obj = _object(item, endpoint, status)
    active = obj.get("active")
    if not isinstance(active, bool):
        raise _fail(endpoint, status, "an authenticator whose 'active' is not a boolean")
    channel = _opt_str(obj, "oob_channel", endpoint, status)
    if channel is None and "oob_channels" in obj:
        channels = _str_tuple(obj["oob_channels"], "oob_channels", endpoint, status)
        channel = channels[0] if channels else None
    return Authenticator(
        _req_str(obj, "id", endpoint, status),
        _req_str(obj, "authenticator_type", endpoint, status),
        active,
        channel,
        _opt_str(obj, "name", endpoint, status),
        _opt_str(obj, "type", endpoint, status),
    )


def parse_authenticators(body: Any, *, endpoint: str, status: int) -> list[Authenticator]:
    """The list of ``GET /mfa/authenticators`` (``oob_channels`` lists are accepted)."""
    if not isinstance(body, list):
        raise _fail(endpoint, status, f"a JSON {type(body).__name__} where a list was expected")
    return [_authenticator(item, endpoint, status) for item in body]


def parse_association(body: Any, *, endpoint: str, status: int) -> Association:
    """A ``POST /mfa/associate`` answer; otp needs a ``secret``, oob an ``oob_code``."""
    obj = _object(body, endpoint, status)
    kind = _req_str(obj, "authenticator_type", endpoint, status)
    if kind == "otp":
        secret: str | None = _req_str(obj, "secret", endpoint, status)
    else:
        secret = _opt_str(obj, "secret", endpoint, status)
    if kind == "oob":
        oob_code: str | None = _req_str(obj, "oob_code", endpoint, status)
    else:
        oob_code = _opt_str(obj, "oob_code", endpoint, status)
    return Association(
        kind,
        secret,
        _opt_str(obj, "barcode_uri", endpoint, status),
        oob_code,
        _opt_str(obj, "oob_channel", endpoint, status),
        _opt_str(obj, "binding_method", endpoint, status),
        _str_tuple(obj.get("recovery_codes"), "recovery_codes", endpoint, status),
    )


def parse_challenge(body: Any, *, endpoint: str, status: int) -> Challenge:
    """A ``POST /mfa/challenge`` answer; an ``oob`` challenge needs an ``oob_code``."""
    obj = _object(body, endpoint, status)
    kind = _req_str(obj, "challenge_type", endpoint, status)
    if kind == "oob":
        oob_code: str | None = _req_str(obj, "oob_code", endpoint, status)
    else:
        oob_code = _opt_str(obj, "oob_code", endpoint, status)
    return Challenge(kind, oob_code, _opt_str(obj, "binding_method", endpoint, status))
