"""The code factors ``sms``, ``voice`` and ``email``: a 6-digit code sent out of band.

The code comes from the login's :class:`~flowengine.factors.codes.CodeSource`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from flowengine.errors import FactorError
from flowengine.factors.base import (
    FactorContext,
    FactorStrategy,
    Pending,
    pending_from_association,
    register,
)

if TYPE_CHECKING:
    from flowengine.replies import ErrorReply, MfaRequired, TokenSet

__all__ = ["EmailFactor", "OobCodeFactor", "SmsFactor", "VoiceFactor"]


class OobCodeFactor(FactorStrategy):
    """Base of the factors whose code arrives by SMS, voice call or email."""

    authenticator_type = "oob"
    grant = "mfa-oob"

    def _association_fields(self, ctx: FactorContext) -> dict[str, Any]:
        phone = ctx.phone or ctx.credentials.phone_number
        if not phone:
            raise FactorError(
                f"enrolling {self.name} needs the user's phone number", factor=self.name
            )
        return {"phone_number": phone}

    async def enroll(self, ctx: FactorContext) -> Pending | ErrorReply:
        from flowengine.replies import ErrorReply

        fields = self._association_fields(ctx)
        reply = await ctx.api.associate(
            ctx.mfa_token,
            authenticator_types=["oob"],
            oob_channels=[str(self.oob_channel)],
            **fields,
        )
        if isinstance(reply, ErrorReply):
            return reply
        changes: dict[str, Any] = {}
        if reply.recovery_codes:
            changes["recovery_code"] = reply.recovery_codes[0]
        if "phone_number" in fields and fields["phone_number"] != ctx.credentials.phone_number:
            changes["phone_number"] = fields["phone_number"]
        if "email" in fields and fields["email"] != ctx.credentials.email:
            changes["email"] = fields["email"]
        if changes:
            ctx.save(attrs.evolve(ctx.credentials, **changes))
        return pending_from_association(reply)

    async def verify(
        self, ctx: FactorContext, pending: Pending
    ) -> TokenSet | MfaRequired | ErrorReply:
        if ctx.code_source is None:
            raise FactorError(f"no code source is configured for {self.name}", factor=self.name)
        if pending.oob_code is None:
            raise FactorError("the challenge carried no oob_code", factor=self.name)
        code = await ctx.code_source.code(ctx.username, str(self.oob_channel))
        return await ctx.api.oob_grant(ctx.mfa_token, pending.oob_code, binding_code=code)


@register
class SmsFactor(OobCodeFactor):
    """A code sent by SMS."""

    name = "sms"
    oob_channel = "sms"


@register
class VoiceFactor(OobCodeFactor):
    """A code read out in a voice call."""

    name = "voice"
    oob_channel = "voice"


@register
class EmailFactor(OobCodeFactor):
    """A code sent by email."""

    name = "email"
    oob_channel = "email"

    def _association_fields(self, ctx: FactorContext) -> dict[str, Any]:
        email = (
            ctx.email or ctx.credentials.email or (ctx.username if "@" in ctx.username else None)
        )
        if not email:
            raise FactorError("enrolling email needs the user's email address", factor=self.name)
        return {"email": email}
