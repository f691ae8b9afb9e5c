"""The factor strategy interface and the registry of strategies.

A factor (OTP, SMS, push...) is a subclass of :class:`FactorStrategy` that knows how to
enroll it, challenge it and make one grant attempt with it; the engine does the routing,
the timing and the waiting. Strategies are stateless: everything about one login is in the
:class:`FactorContext` the engine passes. Third parties register theirs with
:func:`register`, or ship them under the ``flowengine.factors`` entry point group.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

import attrs

from flowengine.errors import FactorError, UnknownFactor

if TYPE_CHECKING:
    from flowengine.clock import Clock
    from flowengine.config import EngineConfig
    from flowengine.credentials import UserCredentials
    from flowengine.factors.codes import CodeSource
    from flowengine.replies import (
        Association,
        Authenticator,
        Challenge,
        ErrorReply,
        MfaRequired,
        TokenSet,
    )

__all__ = [
    "ENTRY_POINT_GROUP",
    "FactorContext",
    "FactorStrategy",
    "MfaApi",
    "Pending",
    "get_strategy",
    "load_entry_points",
    "pending_from_association",
    "register",
    "registered_factors",
]

ENTRY_POINT_GROUP = "flowengine.factors"


class MfaApi(Protocol):
    """The Authentication API calls a strategy makes (an AuthClient, or the engine's
    retrying wrapper around one)."""

    async def associate(
        self,
        token: str,
        *,
        authenticator_types: Sequence[str],
        oob_channels: Sequence[str] | None = None,
        phone_number: str | None = None,
        email: str | None = None,
    ) -> Association | ErrorReply: ...

    async def challenge(
        self,
        mfa_token: str,
        *,
        challenge_type: str | None = None,
        authenticator_id: str | None = None,
    ) -> Challenge | ErrorReply: ...

    async def otp_grant(self, mfa_token: str, otp: str) -> TokenSet | MfaRequired | ErrorReply: ...

    async def oob_grant(
        self, mfa_token: str, oob_code: str, binding_code: str | None = None
    ) -> TokenSet | MfaRequired | ErrorReply: ...

    async def recovery_code_grant(
        self, mfa_token: str, recovery_code: str
    ) -> TokenSet | MfaRequired | ErrorReply: ...


class FactorContext(Protocol):
    """What a strategy may read and do during one login (the engine implements it)."""

    @property
    def api(self) -> MfaApi:
        """The API calls, over the engine's shared pool."""
        ...

    clock: Clock
    config: EngineConfig
    username: str
    mfa_token: str
    phone: str | None
    email: str | None
    credentials: UserCredentials
    code_source: CodeSource | None
    otp_counters: dict[str, int]
    """Per user, the last TOTP time step submitted (codes are single use)."""

    def save(self, record: UserCredentials) -> None:
        """Store what was learned, durably, before the flow goes on."""
        ...

    async def wait(self, seconds: float, step: str) -> None:
        """Wait ``seconds`` without holding a gate slot; recorded as step ``step``."""
        ...


@attrs.define(slots=True, kw_only=True)
class Pending:
    """What a grant attempt needs after an association or a challenge."""

    oob_code: str | None = attrs.field(default=None, repr=False)
    binding_method: str | None = None
    enrolling: bool = False
    """True when the grant confirms a new enrollment."""
    authenticator_id: str | None = None
    polls: int = 0
    interval: float = 0.0
    """Current polling interval (push), grown by ``slow_down``."""
    started: float = 0.0
    """Monotonic time of the first grant attempt (push timeout)."""


class FactorStrategy(abc.ABC):
    """One MFA factor: how to enroll it, challenge it and verify it."""

    name: ClassVar[str]
    """Registry name: ``otp``, ``sms``, ``voice``, ``email``, ``push``, ``recovery-code``."""
    authenticator_type: ClassVar[str]
    """Its ``authenticator_type`` in the list: ``otp``, ``oob`` or ``recovery-code``."""
    oob_channel: ClassVar[str | None] = None
    """Its ``oob_channel`` for ``oob`` factors: ``sms``, ``voice``, ``email``, ``auth0`` (push)."""
    grant: ClassVar[str]
    """The grant that verifies it: ``mfa-otp``, ``mfa-oob``, ``mfa-recovery-code``."""
    can_enroll: ClassVar[bool] = True
    code_bucket: ClassVar[str | None] = "code"
    """Which of Auth0's failed-attempt buckets a wrong answer spends (None: none)."""
    outcomes: ClassVar[frozenset[str]] = frozenset({"success", "failed"})
    """What a login with this factor can end in, for documentation and stats."""

    def matches(self, authenticator: Authenticator) -> bool:
        """Whether an authenticator from the list is one of this factor's."""
        return (
            authenticator.authenticator_type == self.authenticator_type
            and authenticator.oob_channel == self.oob_channel
        )

    def find(self, authenticators: Sequence[Authenticator]) -> Authenticator | None:
        """The user's active authenticator of this factor, if any."""
        for authenticator in authenticators:
            if authenticator.active and self.matches(authenticator):
                return authenticator
        return None

    def needs_challenge(self, ctx: FactorContext) -> bool:
        """Whether ``/mfa/challenge`` comes before the grant."""
        return True

    def usable(self, ctx: FactorContext) -> bool:
        """Whether this login has what the factor needs (e.g. a stored OTP secret)."""
        return True

    async def enroll(self, ctx: FactorContext) -> Pending | ErrorReply:
        """Associate a new authenticator of this factor (``/mfa/associate``)."""
        raise FactorError(f"factor {self.name!r} cannot be enrolled", factor=self.name)

    async def challenge(
        self, ctx: FactorContext, authenticator: Authenticator
    ) -> Pending | ErrorReply:
        """Ask Auth0 to challenge ``authenticator`` (``/mfa/challenge``)."""
        reply = await ctx.api.challenge(
            ctx.mfa_token, challenge_type="oob", authenticator_id=authenticator.id
        )
        return _pending_from_challenge(reply, authenticator.id)

    @abc.abstractmethod
    async def verify(
        self, ctx: FactorContext, pending: Pending
    ) -> TokenSet | MfaRequired | ErrorReply:
        """Make one grant attempt."""

    def retry_delay(self, ctx: FactorContext, pending: Pending, reply: ErrorReply) -> float | None:
        """Seconds to wait before trying the grant again, or None to stop on ``reply``."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _pending_from_challenge(
    reply: Challenge | ErrorReply, authenticator_id: str
) -> Pending | ErrorReply:
    from flowengine.replies import ErrorReply

    if isinstance(reply, ErrorReply):
        return reply
    return Pending(
        oob_code=reply.oob_code,
        binding_method=reply.binding_method,
        authenticator_id=authenticator_id,
    )


def pending_from_association(association: Association) -> Pending:
    """The grant inputs an ``/mfa/associate`` answer gives."""
    return Pending(
        oob_code=association.oob_code,
        binding_method=association.binding_method,
        enrolling=True,
    )


_REGISTRY: dict[str, FactorStrategy] = {}
_S = TypeVar("_S", bound=type[FactorStrategy])


def register(cls: _S) -> _S:
    """Class decorator: make a strategy available under its ``name``."""
    candidate: object = cls
    if not (isinstance(candidate, type) and issubclass(candidate, FactorStrategy)):
        raise TypeError(f"{cls!r} is not a FactorStrategy subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} needs a non-empty 'name' class attribute")
    _REGISTRY[name] = cls()
    return cls


def registered_factors() -> tuple[str, ...]:
    """The names of every registered strategy, sorted."""
    return tuple(sorted(_REGISTRY))


def get_strategy(name: str) -> FactorStrategy:
    """The strategy registered as ``name``; :class:`UnknownFactor` names the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(registered_factors())
        raise UnknownFactor(
            f"unknown factor {name!r}; known factors: {known}", factor=name
        ) from None


def load_entry_points() -> list[str]:
    """Register the strategies other packages ship under ``flowengine.factors``.

    Each entry point names a :class:`FactorStrategy` subclass. Returns the names loaded.
    """
    loaded = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry_point.load()
        except Exception as exc:
            raise FactorError(
                f"factor entry point {entry_point.name!r} ({entry_point.value}) failed to load:"
                f" {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, FactorStrategy)):
            raise FactorError(
                f"factor entry point {entry_point.name!r} ({entry_point.value}) is not a"
                " FactorStrategy subclass"
            )
        register(cls)
        loaded.append(cls.name)
    return loaded
