"""The journey step catalogue: one attrs class per step, and what a step may expect.

A step is a one-key mapping in the file (``- enroll: sms``) with optional ``name:`` and
``expect:``. Every step but ``push``, ``wait`` and ``repeat`` carries an :class:`Expectation`;
without ``expect:`` it is the step's ``default_outcome`` (``success``, or ``failed`` for
``wrong_code`` and ``expire_mfa_token``).
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeAlias

import attrs

__all__ = [
    "CODE_FACTORS",
    "Delete",
    "ERROR_CODES",
    "Enroll",
    "Expectation",
    "ExpireMfaToken",
    "LatencyBound",
    "ListAuthenticators",
    "Login",
    "OUTCOMES",
    "Outcome",
    "Push",
    "RecoveryCode",
    "Refresh",
    "Repeat",
    "Step",
    "StepBase",
    "Userinfo",
    "Wait",
    "WrongCode",
]

Outcome: TypeAlias = Literal["success", "failed", "locked", "timeout"]
OUTCOMES: tuple[Outcome, ...] = ("success", "failed", "locked", "timeout")
"""What a step can end with."""

ERROR_CODES = frozenset(
    {
        "access_denied",
        "association_required",
        "authorization_pending",
        "expired_token",
        "invalid_client",
        "invalid_grant",
        "invalid_request",
        "invalid_scope",
        "mfa_required",
        "password_leaked",
        "requires_verification",
        "server_error",
        "slow_down",
        "too_many_attempts",
        "too_many_requests",
        "unauthorized",
        "unauthorized_client",
        "unsupported_challenge_type",
        "unsupported_grant_type",
    }
)
"""Auth0's error codes (reference §3-§9). Other snake_case codes are accepted unless they
look like a typo of one of these."""

CODE_FACTORS = ("email", "otp", "recovery-code", "sms", "voice")
"""Factors answered with a code, which ``wrong_code`` can get wrong."""


@attrs.frozen(kw_only=True)
class LatencyBound:
    """``< 2s`` or ``<= 500ms``: how long a step may take."""

    seconds: float
    inclusive: bool = False
    """True for ``<=``."""

    def holds(self, seconds: float) -> bool:
        """Whether a step that took ``seconds`` meets the bound."""
        return seconds <= self.seconds if self.inclusive else seconds < self.seconds

    def __str__(self) -> str:
        return f"{'<=' if self.inclusive else '<'} {self.seconds:g}s"


@attrs.frozen(kw_only=True)
class Expectation:
    """What a step must end with; None fields are not checked."""

    outcome: Outcome = "success"
    error: str | None = None
    """The ``error`` code of the reply, e.g. ``invalid_grant`` (implies a failed outcome)."""
    authenticators: int | None = None
    """How many authenticators the user has (``list_authenticators``)."""
    recovery_code: Literal["issued", "unchanged"] | None = None
    """Whether the step gave the user a new recovery code."""
    latency: LatencyBound | None = None


@attrs.frozen(kw_only=True)
class StepBase:
    """What every step has."""

    kind: ClassVar[str]
    """The step's key in the file."""
    default_outcome: ClassVar[Outcome | None] = "success"
    """The outcome expected without ``expect:``; None: the step takes no expectation."""
    expect_keys: ClassVar[frozenset[str]] = frozenset({"outcome", "error", "latency"})

    path: str
    """Where the step is in the file, e.g. ``journeys[0].steps[3]``."""
    name: str | None = None
    """The step's name in reports (``label`` falls back to a description)."""
    expect: Expectation | None = None
    """None for push, wait and repeat, which take no expectation."""

    @property
    def label(self) -> str:
        """The step's name, or its kind and argument."""
        return self.name or self._describe()

    def _describe(self) -> str:
        return self.kind


@attrs.frozen(kw_only=True)
class Login(StepBase):
    """Log in with a factor (``any``: the first usable enrolled one)."""

    kind: ClassVar[str] = "login"
    expect_keys: ClassVar[frozenset[str]] = StepBase.expect_keys | {"recovery_code"}
    factor: str

    def _describe(self) -> str:
        return f"login {self.factor}"


@attrs.frozen(kw_only=True)
class Enroll(StepBase):
    """Enroll a factor (password grant, associate, confirm)."""

    kind: ClassVar[str] = "enroll"
    expect_keys: ClassVar[frozenset[str]] = StepBase.expect_keys | {"recovery_code"}
    factor: str

    def _describe(self) -> str:
        return f"enroll {self.factor}"


@attrs.frozen(kw_only=True)
class WrongCode(StepBase):
    """Answer a challenge of ``factor`` with a wrong code ``times`` times."""

    kind: ClassVar[str] = "wrong_code"
    default_outcome: ClassVar[Outcome | None] = "failed"
    factor: str
    times: int = 1

    def _describe(self) -> str:
        return f"wrong_code {self.factor} x{self.times}"


@attrs.frozen(kw_only=True)
class ExpireMfaToken(StepBase):
    """Get an mfa_token, let it expire, then try to use it."""

    kind: ClassVar[str] = "expire_mfa_token"
    default_outcome: ClassVar[Outcome | None] = "failed"
    factor: str = "any"


@attrs.frozen(kw_only=True)
class RecoveryCode(StepBase):
    """Log in with the stored recovery code (and store the new one)."""

    kind: ClassVar[str] = "recovery_code"
    expect_keys: ClassVar[frozenset[str]] = StepBase.expect_keys | {"recovery_code"}


@attrs.frozen(kw_only=True)
class Push(StepBase):
    """How the user's next pushes are answered."""

    kind: ClassVar[str] = "push"
    default_outcome: ClassVar[Outcome | None] = None
    expect_keys: ClassVar[frozenset[str]] = frozenset()
    answer: Literal["approve", "reject", "ignore", "manual"]
    """``manual``: by hand on a phone, against a real tenant."""

    def _describe(self) -> str:
        return f"push {self.answer}"


@attrs.frozen(kw_only=True)
class ListAuthenticators(StepBase):
    """List the user's authenticators (MFA API)."""

    kind: ClassVar[str] = "list_authenticators"
    expect_keys: ClassVar[frozenset[str]] = StepBase.expect_keys | {"authenticators"}


@attrs.frozen(kw_only=True)
class Delete(StepBase):
    """Delete an authenticator: the one of ``factor``, the one with ``authenticator_id``, or all."""

    kind: ClassVar[str] = "delete"
    factor: str | None = None
    authenticator_id: str | None = None

    @property
    def deletes_all(self) -> bool:
        """``delete: all``."""
        return self.factor is None and self.authenticator_id is None

    def _describe(self) -> str:
        return f"delete {self.factor or self.authenticator_id or 'all'}"


@attrs.frozen(kw_only=True)
class Refresh(StepBase):
    """Exchange the stored refresh token for new tokens."""

    kind: ClassVar[str] = "refresh"


@attrs.frozen(kw_only=True)
class Userinfo(StepBase):
    """Call /userinfo with the current access token."""

    kind: ClassVar[str] = "userinfo"


@attrs.frozen(kw_only=True)
class Wait(StepBase):
    """Pause the user for ``seconds``."""

    kind: ClassVar[str] = "wait"
    default_outcome: ClassVar[Outcome | None] = None
    expect_keys: ClassVar[frozenset[str]] = frozenset()
    seconds: float

    def _describe(self) -> str:
        return f"wait {self.seconds:g}s"


@attrs.frozen(kw_only=True)
class Repeat(StepBase):
    """Run ``steps`` ``times`` times."""

    kind: ClassVar[str] = "repeat"
    default_outcome: ClassVar[Outcome | None] = None
    expect_keys: ClassVar[frozenset[str]] = frozenset()
    times: int
    steps: tuple[Step, ...]

    def _describe(self) -> str:
        return f"repeat x{self.times}"


Step: TypeAlias = (
    Login
    | Enroll
    | WrongCode
    | ExpireMfaToken
    | RecoveryCode
    | Push
    | ListAuthenticators
    | Delete
    | Refresh
    | Userinfo
    | Wait
    | Repeat
)
