"""What a login returns: the outcome, the tokens and the path it took."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

from flowengine.errors import FlowError, FlowTimeout

if TYPE_CHECKING:
    from flowengine.replies import TokenSet

__all__ = [
    "FAILED",
    "LoginResult",
    "OUTCOMES",
    "SUCCESS",
    "StepRecord",
    "TIMEOUT",
]

SUCCESS: Final = "success"
FAILED: Final = "failed"
TIMEOUT: Final = "timeout"
OUTCOMES: Final = (SUCCESS, FAILED, TIMEOUT)


@attrs.frozen(slots=True)
class StepRecord:
    """One step of a login: its name, how long it took, and how it ended."""

    step: str
    """``queue``, ``password``, ``authenticators``, ``associate``, ``challenge``,
    ``grant:mfa-otp``/``grant:mfa-oob``/``grant:mfa-recovery-code``, ``push_wait``,
    ``otp_wait``, ``id_token``."""
    seconds: float
    outcome: str
    """``ok``, or the error kind that ended the step (e.g. ``authorization_pending``)."""


@attrs.frozen(slots=True, kw_only=True)
class LoginResult:
    """The end of one login. Its repr shows no token."""

    username: str
    outcome: str
    """``success``, ``failed`` or ``timeout``."""
    tokens: TokenSet | None = attrs.field(default=None, repr=False)
    path: tuple[StepRecord, ...] = ()
    seconds: float = 0.0
    """From asking to log in to the end, queueing included."""
    factor: str | None = None
    """The factor that verified (or failed) the login."""
    enrolled: bool = False
    """True when this login enrolled a new authenticator."""
    error: str | None = None
    """Why it failed: an API error kind (``invalid_code``...) or a local one (``flow_timeout``)."""
    error_description: str | None = None
    status: int | None = None
    """The HTTP status of the reply that failed the login, if one did."""
    state: str | None = None
    """The state the login failed in."""
    retries: tuple[str, ...] = ()
    """The steps retried (once per retry), e.g. after a 429 or a 503."""

    @property
    def ok(self) -> bool:
        """True when the login ended with tokens."""
        return self.outcome == SUCCESS

    def raise_for_outcome(self) -> None:
        """Raise :class:`FlowError` (or :class:`FlowTimeout`) unless the login succeeded."""
        if self.outcome == SUCCESS:
            return
        message = f"login of {self.username!r} {self.outcome} in {self.state}: {self.error}"
        if self.error_description:
            message += f" ({self.error_description})"
        if self.outcome == TIMEOUT:
            raise FlowTimeout(message, state=self.state, factor=self.factor)
        raise FlowError(message, state=self.state, factor=self.factor)
