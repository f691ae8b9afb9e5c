"""The ``recovery-code`` factor: the stored code, replaced by the one the grant returns.

The replacement is stored (durably, for a durable store) before the login goes on: the
used code is dead the moment Auth0 accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from flowengine.errors import FactorError
from flowengine.factors.base import FactorContext, FactorStrategy, Pending, register

if TYPE_CHECKING:
    from flowengine.replies import Authenticator, ErrorReply, MfaRequired, TokenSet

__all__ = ["RecoveryCodeFactor"]


@register
class RecoveryCodeFactor(FactorStrategy):
    """The recovery code issued at the user's first enrollment."""

    name = "recovery-code"
    authenticator_type = "recovery-code"
    grant = "mfa-recovery-code"
    can_enroll = False
    code_bucket = "recovery"

    def find(self, authenticators: Sequence[Authenticator]) -> Authenticator | None:
        # Auth0 lists the recovery code as inactive (reference §4); it works while the
        # user has any active authenticator.
        if not any(a.active for a in authenticators):
            return None
        for authenticator in authenticators:
            if self.matches(authenticator):
                return authenticator
        return None

    def needs_challenge(self, ctx: FactorContext) -> bool:
        return False

    def usable(self, ctx: FactorContext) -> bool:
        return ctx.credentials.recovery_code is not None

    async def verify(
        self, ctx: FactorContext, pending: Pending
    ) -> TokenSet | MfaRequired | ErrorReply:
        from flowengine.replies import TokenSet

        code = ctx.credentials.recovery_code
        if code is None:
            raise FactorError("no recovery code is stored for this user", factor=self.name)
        reply = await ctx.api.recovery_code_grant(ctx.mfa_token, code)
        if isinstance(reply, TokenSet) and reply.recovery_code:
            ctx.save(attrs.evolve(ctx.credentials, recovery_code=reply.recovery_code))
        return reply
