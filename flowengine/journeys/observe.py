"""How a step ended, as an :class:`~flowengine.journeys.results.Observed`; the journey user.

Replies of the API and results of logins become observations here, with the error named by
Auth0's code (``invalid_grant``) and the engine's name for it (``invalid_code``) as an alias,
and every secret masked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import attrs

from flowengine.factors import get_strategy, registered_factors
from flowengine.journeys.results import Observed
from flowengine.log import mask_secrets
from flowengine.replies import Authenticator, ErrorKind, ErrorReply, TokenSet
from flowengine.result import LoginResult
from flowengine.spec import UserSpec
from flowengine.spec.steps import Outcome

__all__ = [
    "JourneyUser",
    "Stopped",
    "count_enrolled",
    "factor_of",
    "failed",
    "observed_from_login",
    "observed_from_reply",
]

# The engine's names for what ended a login, and the Auth0 code of the reply behind them.
_WIRE_CODES = {
    "access_denied": "access_denied",
    "already_enrolled": "access_denied",
    "enrollment_required": "association_required",
    "expired_token": "expired_token",
    "invalid_code": "invalid_grant",
    "invalid_credentials": "invalid_grant",
    "invalid_request": "invalid_request",
    "locked": "too_many_attempts",
    "malformed_token": "invalid_grant",
    "mfa_required": "mfa_required",
    "rate_limited": "too_many_requests",
    "server_error": "server_error",
    "slow_down": "slow_down",
    "unauthorized": "unauthorized",
}


class Stopped(Exception):
    """The run was asked to stop while a step waited."""


@attrs.define(kw_only=True)
class JourneyUser:
    """One user going through a journey: who, and what the journey keeps in memory."""

    spec: UserSpec
    rng: random.Random
    """Seeded per (run seed, journey, user): the wrong codes it submits."""
    tokens: TokenSet | None = attrs.field(default=None, repr=False)
    """The last login's tokens (access token for ``userinfo``)."""
    refresh_token: str | None = attrs.field(default=None, repr=False)
    push: str | None = None
    """How this user's pushes are answered, once a ``push`` step said so."""

    def keep(self, tokens: TokenSet) -> None:
        """Remember a login's (or a refresh's) tokens."""
        self.tokens = tokens
        if tokens.refresh_token:
            self.refresh_token = tokens.refresh_token


def count_enrolled(authenticators: Sequence[Authenticator]) -> int:
    """What a person enrolled: active authenticators, without the recovery code, a phone's
    ``sms`` and ``voice`` entries once, and no OTP twin of a push."""
    active = [a for a in authenticators if a.active and a.authenticator_type != "recovery-code"]
    phones = {a.id.partition("|")[2] for a in active if a.oob_channel in ("sms", "voice")}
    others = [a for a in active if a.oob_channel not in ("sms", "voice")]
    pushes = sum(a.oob_channel == "auth0" for a in others)
    otps = sum(a.authenticator_type == "otp" for a in others)
    return len(phones) + len(others) - otps + max(otps - pushes, 0)


def factor_of(authenticator: Authenticator) -> str:
    """The factor strategy an authenticator of the list belongs to."""
    for name in registered_factors():
        if get_strategy(name).matches(authenticator):
            return name
    return authenticator.authenticator_type


def failed(error: str, description: str, **fields: Any) -> Observed:
    """A failure that no reply said (flowengine's own ``error`` name)."""
    return Observed(outcome="failed", error=error, description=description, **fields)


def observed_from_reply(reply: ErrorReply, **extra: Any) -> Observed:
    """An error answer of the API as a step's outcome (``locked`` for ``too_many_attempts``)."""
    locked = reply.kind is ErrorKind.TOO_MANY_ATTEMPTS
    body = {
        "endpoint": reply.endpoint,
        "status": reply.status,
        "error": reply.error,
        "error_description": reply.error_description,
        **extra,
    }
    return Observed(
        outcome="locked" if locked else "failed",
        error=reply.error or reply.kind.value,
        aliases=(reply.kind.value, "locked") if locked else (reply.kind.value,),
        description=reply.error_description or None,
        status=reply.status,
        reply=mask_secrets(body),
    )


def observed_from_login(result: LoginResult) -> Observed:
    """A login's result as a step's outcome; the error named by Auth0's code."""
    summary = {
        "outcome": result.outcome,
        "factor": result.factor,
        "enrolled": result.enrolled,
        "error": result.error,
        "error_description": result.error_description,
        "status": result.status,
        "state": result.state,
        "path": [f"{r.step} {r.outcome} {r.seconds * 1000:.0f} ms" for r in result.path],
    }
    if result.ok:
        return Observed(outcome="success", reply=mask_secrets(summary))
    name = result.error or result.outcome
    wire = _WIRE_CODES.get(name, name)
    outcome: Outcome = "timeout" if result.outcome == "timeout" else "failed"
    return Observed(
        outcome="locked" if name == "locked" else outcome,
        error=wire,
        aliases=(name,) if name != wire else (),
        description=result.error_description,
        status=result.status,
        reply=mask_secrets(summary),
    )
