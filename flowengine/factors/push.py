"""The ``push`` factor (Guardian, ``oob_channel`` ``auth0``): poll the mfa-oob grant.

``authorization_pending`` means ask again after the interval, ``slow_down`` means ask less
often, ``access_denied`` (the user rejected it) is final. Auth0 allows 12 polls a minute
per MFA session (reference §11); the interval is :class:`~flowengine.config.PushPolling`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowengine.errors import FactorError, FactorTimeout
from flowengine.factors.base import (
    FactorContext,
    FactorStrategy,
    Pending,
    pending_from_association,
    register,
)

if TYPE_CHECKING:
    from flowengine.replies import ErrorReply, MfaRequired, TokenSet

__all__ = ["PushFactor"]


@register
class PushFactor(FactorStrategy):
    """A push notification answered in the Guardian app."""

    name = "push"
    authenticator_type = "oob"
    oob_channel = "auth0"
    grant = "mfa-oob"
    code_bucket = None
    outcomes = frozenset({"success", "failed", "timeout"})

    async def enroll(self, ctx: FactorContext) -> Pending | ErrorReply:
        from flowengine.replies import ErrorReply

        reply = await ctx.api.associate(
            ctx.mfa_token, authenticator_types=["oob"], oob_channels=["auth0"]
        )
        if isinstance(reply, ErrorReply):
            return reply
        if reply.recovery_codes:
            import attrs

            ctx.save(attrs.evolve(ctx.credentials, recovery_code=reply.recovery_codes[0]))
        return pending_from_association(reply)

    async def verify(
        self, ctx: FactorContext, pending: Pending
    ) -> TokenSet | MfaRequired | ErrorReply:
        if pending.oob_code is None:
            raise FactorError("the push challenge carried no oob_code", factor=self.name)
        if pending.polls == 0:
            pending.started = ctx.clock.monotonic()
            pending.interval = ctx.config.push.interval
        pending.polls += 1
        return await ctx.api.oob_grant(ctx.mfa_token, pending.oob_code)

    def retry_delay(self, ctx: FactorContext, pending: Pending, reply: ErrorReply) -> float | None:
        from flowengine.replies import ErrorKind

        if reply.kind is ErrorKind.SLOW_DOWN:
            pending.interval += ctx.config.push.slow_down_step
        elif reply.kind is not ErrorKind.AUTHORIZATION_PENDING:
            return None
        waited = ctx.clock.monotonic() - pending.started
        if waited + pending.interval > ctx.config.push.timeout:
            raise FactorTimeout(
                f"the push was not answered within {ctx.config.push.timeout:g} s", factor=self.name
            )
        return pending.interval
