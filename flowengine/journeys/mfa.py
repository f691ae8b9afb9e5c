"""The steps that use the MFA API: ``enroll``, ``list_authenticators`` and ``delete``.

``enroll`` associates and confirms through the factor's strategy; its bearer is the
``mfa_token`` of a password grant while the user has no active factor (that enrollment is
also a login), else an MFA-API access token: a login with an enrolled factor for the
audience ``https://{domain}/mfa/`` and :data:`MFA_API_SCOPE` (reference §5, §8). ``delete``
needs such a token too; ``list_authenticators`` reads with an ``mfa_token``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from flowengine.api import AuthClient
from flowengine.clock import Clock
from flowengine.credentials import StoredAuthenticator, UserCredentials
from flowengine.factors import CodeSource, FactorStrategy, Pending, get_strategy
from flowengine.journeys.observe import (
    JourneyUser,
    count_enrolled,
    factor_of,
    failed,
    observed_from_reply,
)
from flowengine.journeys.results import Observed
from flowengine.log import mask_secrets
from flowengine.replies import Authenticator, ErrorReply, MfaRequired, TokenSet
from flowengine.spec import Delete, Enroll, ListAuthenticators

if TYPE_CHECKING:
    from flowengine.journeys.actions import StepActions

__all__ = ["MFA_API_SCOPE", "delete", "enroll", "list_authenticators"]

MFA_API_SCOPE = "enroll read:authenticators remove:authenticators"
"""The scopes of the MFA-API access token enroll and delete use (reference §8)."""
_MAX_POLLS = 1000


class _Context:
    """The :class:`~flowengine.factors.FactorContext` of an enrollment outside a login."""

    def __init__(
        self,
        actions: StepActions,
        user: JourneyUser,
        bearer: str,
    ) -> None:
        engine = actions.engine
        spec = user.spec
        self.api: AuthClient = engine.api
        self.clock: Clock = engine.clock
        self.config = engine.config
        self.username = spec.username
        self.mfa_token = bearer
        self.phone = spec.phone
        self.email = spec.email
        self.credentials = engine.credentials.get(spec.username) or UserCredentials(
            username=spec.username, phone_number=spec.phone, email=spec.email
        )
        self.code_source: CodeSource | None = actions.code_source
        self.otp_counters = actions.otp_counters
        self._store = engine.credentials
        self._sleep = actions.sleep

    def save(self, record: UserCredentials) -> None:
        self.credentials = record
        self._store.put(record)

    async def wait(self, seconds: float, step: str) -> None:
        await self._sleep(seconds)


async def _confirm(
    ctx: _Context, strategy: FactorStrategy, pending: Pending
) -> TokenSet | MfaRequired | ErrorReply:
    """The confirming grant; push is polled as the strategy says (bounded)."""
    reply = await strategy.verify(ctx, pending)
    for _ in range(_MAX_POLLS):
        if not isinstance(reply, ErrorReply):
            break
        delay = strategy.retry_delay(ctx, pending, reply)
        if delay is None:
            break
        await ctx.wait(delay, "push_wait")
        reply = await strategy.verify(ctx, pending)
    return reply


def _learn(
    actions: StepActions, username: str, listed: Sequence[Authenticator], **changes: Any
) -> None:
    """Store what the user has now (the next run's emulator restores it)."""
    store = actions.engine.credentials
    record = store.get(username) or UserCredentials(username=username)
    stored = tuple(
        StoredAuthenticator(id=a.id, factor=factor_of(a), active=a.active) for a in listed
    )
    store.put(attrs.evolve(record, authenticators=stored, **changes))


async def enroll(actions: StepActions, step: Enroll, user: JourneyUser) -> Observed:
    """Associate and confirm; with an MFA-API token when a factor is already active."""
    strategy = get_strategy(step.factor)
    mfa_token = await actions.fresh_mfa_token(user)
    if isinstance(mfa_token, Observed):
        return mfa_token
    listed = await actions.api.list_authenticators(mfa_token)
    if isinstance(listed, ErrorReply):
        return observed_from_reply(listed)
    bearer, how = mfa_token, "mfa_token"
    if any(a.active and a.authenticator_type != "recovery-code" for a in listed):
        token = await actions.mfa_api_token(user)
        if isinstance(token, Observed):
            return token
        bearer, how = token, "mfa_api_token"
    ctx = _Context(actions, user, bearer)
    pending = await strategy.enroll(ctx)
    if isinstance(pending, ErrorReply):
        return observed_from_reply(pending)
    reply = await _confirm(ctx, strategy, pending)
    if isinstance(reply, ErrorReply):
        return observed_from_reply(reply)
    ctx.save(ctx.credentials.with_enrolled(strategy.name))
    if how == "mfa_token" and isinstance(reply, TokenSet):
        user.keep(reply)  # the confirming grant logged the user in
    return Observed(outcome="success", reply={"factor": step.factor, "bearer": how})


async def list_authenticators(
    actions: StepActions, step: ListAuthenticators, user: JourneyUser
) -> Observed:
    """GET /mfa/authenticators with an mfa_token (or an MFA-API token without MFA)."""
    reply = await actions.password_grant(user)
    if isinstance(reply, ErrorReply):
        return observed_from_reply(reply)
    if isinstance(reply, MfaRequired):
        bearer = reply.mfa_token
    else:
        token = await actions.mfa_api_token(user)
        if isinstance(token, Observed):
            return token
        bearer = token
    listed = await actions.api.list_authenticators(bearer)
    if isinstance(listed, ErrorReply):
        return observed_from_reply(listed)
    _learn(actions, user.spec.username, listed)
    entries = [
        {"id": a.id, "type": a.authenticator_type, "channel": a.oob_channel, "active": a.active}
        for a in listed
    ]
    return Observed(
        outcome="success", authenticators=count_enrolled(listed), reply=mask_secrets(entries)
    )


async def delete(actions: StepActions, step: Delete, user: JourneyUser) -> Observed:
    """DELETE /mfa/authenticators/{id} with an MFA-API token: one, a factor's, or all."""
    token = await actions.mfa_api_token(user)
    if isinstance(token, Observed):
        if step.deletes_all and "not_enrolled" in token.errors():
            return Observed(outcome="success", reply={"deleted": []})
        return token
    api = actions.api
    listed = await api.list_authenticators(token)
    if isinstance(listed, ErrorReply):
        return observed_from_reply(listed)
    if step.authenticator_id is not None:
        targets = [a for a in listed if a.id == step.authenticator_id]
    elif step.factor is not None:
        strategy = get_strategy(step.factor)
        matching = sorted((a for a in listed if strategy.matches(a)), key=lambda a: not a.active)
        targets = matching[:1]
    else:
        targets = list(listed)
    if not targets and not step.deletes_all:
        wanted = step.authenticator_id or step.factor
        return failed("authenticator_not_found", f"the user has no {wanted} authenticator")
    deleted: list[str] = []
    for target in targets:
        if deleted and step.deletes_all:
            current = await api.list_authenticators(token)
            if isinstance(current, ErrorReply):
                return observed_from_reply(current, deleted=deleted)
            if all(a.id != target.id for a in current):
                continue  # gone with its twin
        reply = await api.delete_authenticator(token, target.id)
        if reply is not None:
            return observed_from_reply(reply, deleted=deleted)
        deleted.append(target.id)
    remaining = await api.list_authenticators(token)
    factors = {factor_of(a) for a in targets}
    changes: dict[str, Any] = {}
    if "otp" in factors and step.authenticator_id is None:
        changes.update(otp_secret=None, last_otp_step=None)
        actions.otp_counters.pop(user.spec.username, None)
    if "recovery-code" in factors:
        changes["recovery_code"] = None
    _learn(
        actions,
        user.spec.username,
        [] if isinstance(remaining, ErrorReply) else remaining,
        **changes,
    )
    return Observed(outcome="success", reply={"deleted": deleted})
