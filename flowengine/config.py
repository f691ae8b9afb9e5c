"""The engine's settings: attrs frozen classes, one place for every default."""

from __future__ import annotations

from typing import Any

import attrs

from flowengine.lockout import LockoutPolicy
from flowengine.retry import RetryPolicy

__all__ = ["DEFAULT_FACTOR_ORDER", "EngineConfig", "PoolLimits", "PushPolling", "Timeouts"]

DEFAULT_FACTOR_ORDER: tuple[str, ...] = ("otp", "push", "sms", "voice", "email", "recovery-code")
"""Which enrolled factor an automatic login uses first."""


def _positive(_instance: Any, attribute: Any, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class Timeouts:
    """How long things may take, in seconds (None: no limit)."""

    request: float | None = attrs.field(default=30.0, validator=_positive)
    """One HTTP request, from sending to the last byte of the answer."""
    login: float | None = attrs.field(default=120.0, validator=_positive)
    """One whole login, from the gate to the tokens."""
    step: float | None = attrs.field(default=None, validator=_positive)
    """One step of a login (a grant, a challenge, one push poll and its wait)."""


@attrs.frozen(kw_only=True)
class PoolLimits:
    """The shared connection pool and the gate in front of it."""

    connections: int = attrs.field(default=100, validator=attrs.validators.gt(0))
    """Sockets the one ``TCPConnector`` may open (aiohttp's ``limit``)."""
    in_flight: int = attrs.field(default=100, validator=attrs.validators.gt(0))
    """Logins running at once; the others wait, first come first served, at the gate.

    aiohttp's connector is not fair (measurements.md: 1,900 of 2,000 users never ran), so
    logins queue at a FIFO gate of ours and hold at most one connection each.
    """


@attrs.frozen(kw_only=True)
class PushPolling:
    """How the push factor polls the mfa-oob grant (reference §7.2, §11)."""

    interval: float = attrs.field(default=5.0, validator=_positive)
    """Seconds between polls: Auth0 allows 12 per minute per MFA session."""
    slow_down_step: float = attrs.field(default=5.0, validator=_positive)
    """Seconds added to the interval after each ``slow_down``."""
    timeout: float = attrs.field(default=120.0, validator=_positive)
    """Give up waiting for an answer after this long."""


@attrs.frozen(kw_only=True)
class EngineConfig:
    """Where to log in, and how."""

    base_url: str
    """``https://tenant.auth0.com`` or ``http://127.0.0.1:8080`` (a bare domain means https)."""
    client_id: str
    client_secret: str | None = attrs.field(default=None, repr=False)
    auth_method: str = attrs.field(
        default="client_secret_post",
        validator=attrs.validators.in_(("client_secret_post", "client_secret_basic", "none")),
    )
    audience: str | None = None
    scope: str | None = None
    realm: str | None = None
    """Set to use the password-realm grant with this connection."""
    enroll: bool = True
    """Enroll the asked factor when the user has no active authenticator."""
    factor_order: tuple[str, ...] = DEFAULT_FACTOR_ORDER
    otp_codes: str = attrs.field(
        default="secret", validator=attrs.validators.in_(("secret", "code_source"))
    )
    """Where OTP codes come from: computed from the stored secret, or asked of the code
    source (a person typing what their authenticator app shows)."""
    remember_otp_steps: bool = True
    """Store the last TOTP step used per user, so a code is not reused by the next run
    (one small write per OTP login; off, only this process remembers)."""
    otp_challenge: bool = True
    """Call ``/mfa/challenge`` before an OTP grant (Auth0 allows skipping it)."""
    validate_id_token: bool = True
    """Check an id_token's signature, ``iss``, ``aud`` and ``exp`` against the JWKS."""
    max_restarts: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    """Times an expired mfa_token may send a login back to the password grant."""
    max_chained: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    """Times a grant may answer ``mfa_required`` again (chained MFA)."""
    timeouts: Timeouts = Timeouts()
    pool: PoolLimits = PoolLimits()
    push: PushPolling = PushPolling()
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    lockout: LockoutPolicy = attrs.field(factory=LockoutPolicy)

    @staticmethod
    def normalise_base_url(domain: str) -> str:
        """``tenant.auth0.com`` -> ``https://tenant.auth0.com``; no trailing slash."""
        url = domain if "://" in domain else f"https://{domain}"
        return url.rstrip("/")
