"""Retrying what is safe to retry, within a budget per login.

Rate limits (``429 too_many_requests``) are waited out as the answer says
(``Retry-After``, else ``X-RateLimit-Reset``); server errors, timeouts, broken answers and
lost connections are retried with capped exponential backoff and full jitter. A call that
spends a single-use code (an OTP, an SMS/voice/email code, a recovery code, a rotating
refresh token) is retried only when its first attempt provably was not processed: a
``429``, or a connection that failed before the request left. Anything else bubbles up, and
the engine starts that login over from the password grant (bounded), with a fresh code.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

import attrs

from flowengine.errors import ProtocolError, RequestTimeout, TransportError
from flowengine.replies import (
    Association,
    Authenticator,
    Challenge,
    ErrorKind,
    ErrorReply,
    MfaRequired,
    TokenSet,
)

if TYPE_CHECKING:
    from flowengine.api import AuthClient

__all__ = ["RetryPolicy", "RetryScope", "RetryingApi", "rate_limit_wait"]

_T = TypeVar("_T")
_P = ParamSpec("_P")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How transient failures are retried (per login)."""

    budget: int = attrs.field(default=6, validator=attrs.validators.ge(0))
    """Retries one login may spend in all; 0 turns retrying off."""
    base: float = attrs.field(default=0.1, validator=attrs.validators.gt(0))
    """First backoff ceiling in seconds; doubles per attempt."""
    cap: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    """Largest backoff ceiling in seconds."""
    max_rate_limit_wait: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))
    """Longest wait a 429 may ask for; beyond it the 429 is the answer."""
    server_errors: bool = True
    """Retry 5xx answers, timeouts and broken answers of calls that are safe to repeat."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter backoff before retry number ``attempt`` (0-based)."""
        return rng.uniform(0.0, min(self.cap, self.base * 2**attempt))


def rate_limit_wait(reply: ErrorReply, now: float) -> float | None:
    """Seconds a 429 asks to wait (``Retry-After``, else ``X-RateLimit-Reset``), if it says."""
    limit = reply.rate_limit
    if limit.retry_after is not None:
        return max(limit.retry_after, 0.0)
    if limit.reset is not None:
        return max(limit.reset - now, 0.0)
    return None


class RetryScope(Protocol):
    """What a retrying call needs from its login: a budget, a clock, a way to wait."""

    retries: list[str]

    def retry_allowed(self) -> bool:
        """Whether the login's retry budget has a retry left."""
        ...

    def now(self) -> float:
        """Wall-clock time (for ``X-RateLimit-Reset``)."""
        ...

    async def wait(self, seconds: float, step: str) -> None:
        """Wait outside the gate, recorded as a step."""
        ...


_TRANSIENT = (TransportError, RequestTimeout, ProtocolError)


class RetryingApi:
    """The Authentication API calls of one login, retried as :class:`RetryPolicy` says.

    Each method returns the awaitable of one retried call: ``await api.otp_grant(...)``.
    The call and its arguments are kept as they are (no closure per call), and the first
    attempt is the only work on the usual path.
    """

    __slots__ = ("_api", "_policy", "_rng", "_scope")

    def __init__(
        self, api: AuthClient, policy: RetryPolicy, scope: RetryScope, rng: random.Random
    ) -> None:
        self._api = api
        self._policy = policy
        self._scope = scope
        self._rng = rng

    async def _run(
        self,
        step: str,
        safe: bool,
        call: Callable[_P, Awaitable[_T]],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        attempt = 0
        policy = self._policy
        scope = self._scope
        while True:
            try:
                reply = await call(*args, **kwargs)
            except _TRANSIENT as exc:
                repeatable = safe and policy.server_errors
                if isinstance(exc, TransportError):
                    repeatable = (repeatable or not exc.sent) and not exc.lasting
                if not repeatable or not scope.retry_allowed():
                    raise
                delay = policy.backoff(attempt, self._rng)
            else:
                if not isinstance(reply, ErrorReply):
                    return reply
                if reply.kind is ErrorKind.RATE_LIMITED:
                    asked = rate_limit_wait(reply, scope.now())
                    if asked is not None and asked > policy.max_rate_limit_wait:
                        return reply
                    delay = asked if asked is not None else policy.backoff(attempt, self._rng)
                elif reply.kind is ErrorKind.SERVER_ERROR and safe and policy.server_errors:
                    delay = policy.backoff(attempt, self._rng)
                else:
                    return reply
                if not scope.retry_allowed():
                    return reply
            scope.retries.append(step)
            await scope.wait(delay, "retry_wait")
            attempt += 1

    def password_grant(
        self,
        username: str,
        password: str,
        *,
        audience: str | None = None,
        scope: str | None = None,
        realm: str | None = None,
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """``AuthClient.password_grant``, retried (safe: it spends no code)."""
        return self._run(
            "password",
            True,
            self._api.password_grant,
            username,
            password,
            audience=audience,
            scope=scope,
            realm=realm,
        )

    def list_authenticators(
        self, token: str
    ) -> Coroutine[Any, Any, list[Authenticator] | ErrorReply]:
        """``AuthClient.list_authenticators``, retried."""
        return self._run("authenticators", True, self._api.list_authenticators, token)

    def associate(
        self,
        token: str,
        *,
        authenticator_types: Sequence[str],
        oob_channels: Sequence[str] | None = None,
        phone_number: str | None = None,
        email: str | None = None,
    ) -> Coroutine[Any, Any, Association | ErrorReply]:
        """``AuthClient.associate``, retried (a repeat leaves an unconfirmed enrollment)."""
        return self._run(
            "associate",
            True,
            self._api.associate,
            token,
            authenticator_types=authenticator_types,
            oob_channels=oob_channels,
            phone_number=phone_number,
            email=email,
        )

    def challenge(
        self,
        mfa_token: str,
        *,
        challenge_type: str | None = None,
        authenticator_id: str | None = None,
    ) -> Coroutine[Any, Any, Challenge | ErrorReply]:
        """``AuthClient.challenge``, retried (a repeat sends a new code)."""
        return self._run(
            "challenge",
            True,
            self._api.challenge,
            mfa_token,
            challenge_type=challenge_type,
            authenticator_id=authenticator_id,
        )

    def otp_grant(
        self, mfa_token: str, otp: str
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """``AuthClient.otp_grant``: the code is single use, so only unprocessed tries repeat."""
        return self._run("grant:mfa-otp", False, self._api.otp_grant, mfa_token, otp)

    def oob_grant(
        self, mfa_token: str, oob_code: str, binding_code: str | None = None
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """``AuthClient.oob_grant``: a push poll repeats freely, a binding code does not."""
        return self._run(
            "grant:mfa-oob",
            binding_code is None,
            self._api.oob_grant,
            mfa_token,
            oob_code,
            binding_code,
        )

    def recovery_code_grant(
        self, mfa_token: str, recovery_code: str
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """``AuthClient.recovery_code_grant``: single use, only unprocessed tries repeat."""
        return self._run(
            "grant:mfa-recovery-code",
            False,
            self._api.recovery_code_grant,
            mfa_token,
            recovery_code,
        )

    def refresh_token_grant(
        self, refresh_token: str, *, scope: str | None = None
    ) -> Coroutine[Any, Any, TokenSet | MfaRequired | ErrorReply]:
        """``AuthClient.refresh_token_grant``: rotating tokens are single use."""
        return self._run(
            "refresh", False, self._api.refresh_token_grant, refresh_token, scope=scope
        )

    def userinfo(self, access_token: str) -> Coroutine[Any, Any, dict[str, Any] | ErrorReply]:
        """``AuthClient.userinfo``, retried."""
        return self._run("userinfo", True, self._api.userinfo, access_token)
