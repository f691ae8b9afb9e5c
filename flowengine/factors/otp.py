"""The ``otp`` factor: TOTP codes (RFC 6238: HMAC-SHA1, 6 digits, 30 s)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import attrs
import pyotp

from flowengine.errors import FactorError
from flowengine.factors.base import (
    FactorContext,
    FactorStrategy,
    Pending,
    pending_from_association,
    register,
)

if TYPE_CHECKING:
    from flowengine.replies import Authenticator, ErrorReply, MfaRequired, TokenSet

__all__ = ["OtpFactor", "TOTP_PERIOD", "totp_code"]

TOTP_PERIOD = 30


@functools.lru_cache(maxsize=16384)
def _totp(secret: str) -> pyotp.TOTP:
    """pyotp's TOTP for ``secret`` (SHA1, 6 digits, 30 s), built once per secret."""
    return pyotp.TOTP(secret, digits=6, interval=TOTP_PERIOD)


def totp_code(secret: str, at: float) -> str:
    """The 6-digit TOTP code of ``secret`` at epoch time ``at`` (pyotp, RFC 6238)."""
    return str(_totp(secret).at(int(at)))


@register
class OtpFactor(FactorStrategy):
    """An authenticator app. Enrollment confirms with the first code; a 30-second code is
    never submitted twice for one user (Auth0 codes are single use): the next window is
    awaited instead."""

    name = "otp"
    authenticator_type = "otp"
    grant = "mfa-otp"
    outcomes = frozenset({"success", "failed"})

    def usable(self, ctx: FactorContext) -> bool:
        return ctx.credentials.otp_secret is not None or ctx.config.otp_codes == "code_source"

    def needs_challenge(self, ctx: FactorContext) -> bool:
        return ctx.config.otp_challenge

    async def enroll(self, ctx: FactorContext) -> Pending | ErrorReply:
        from flowengine.replies import ErrorReply

        reply = await ctx.api.associate(ctx.mfa_token, authenticator_types=["otp"])
        if isinstance(reply, ErrorReply):
            return reply
        if not reply.secret:
            raise FactorError("the otp association carried no secret", factor=self.name)
        record = attrs.evolve(
            ctx.credentials,
            otp_secret=reply.secret,
            last_otp_step=None,
            recovery_code=reply.recovery_codes[0]
            if reply.recovery_codes
            else ctx.credentials.recovery_code,
        )
        ctx.save(record)
        ctx.otp_counters.pop(ctx.username, None)  # a new secret: no code of it was used
        return pending_from_association(reply)

    async def challenge(
        self, ctx: FactorContext, authenticator: Authenticator
    ) -> Pending | ErrorReply:
        from flowengine.replies import ErrorReply

        reply = await ctx.api.challenge(
            ctx.mfa_token, challenge_type="otp", authenticator_id=authenticator.id
        )
        if isinstance(reply, ErrorReply):
            return reply
        return Pending(authenticator_id=authenticator.id)

    async def verify(
        self, ctx: FactorContext, pending: Pending
    ) -> TokenSet | MfaRequired | ErrorReply:
        if ctx.config.otp_codes == "code_source":
            if ctx.code_source is None:
                raise FactorError("no code source is configured for otp", factor=self.name)
            code = await ctx.code_source.code(ctx.username, "otp")
            return await ctx.api.otp_grant(ctx.mfa_token, code)
        secret = ctx.credentials.otp_secret
        if secret is None:
            raise FactorError("no OTP secret is stored for this user", factor=self.name)
        now = ctx.clock.time()
        step = int(now // TOTP_PERIOD)
        last = ctx.otp_counters.get(ctx.username, ctx.credentials.last_otp_step)
        if last is not None and step <= last:
            await ctx.wait((last + 1) * TOTP_PERIOD - now + 0.001, "otp_wait")
            now = ctx.clock.time()
            step = int(now // TOTP_PERIOD)
        ctx.otp_counters[ctx.username] = step
        if ctx.config.remember_otp_steps:
            ctx.save(attrs.evolve(ctx.credentials, last_otp_step=step))
        return await ctx.api.otp_grant(ctx.mfa_token, totp_code(secret, now))
