"""What each journey step does, with the engine, the API client and the control API.

* ``login``, ``recovery_code``: :meth:`Engine.login <flowengine.engine.Engine.login>`.
* ``enroll``, ``list_authenticators``, ``delete``: the MFA API (:mod:`.mfa`).
* ``wrong_code``: the factor's grant with deliberately wrong codes (seeded).
* ``expire_mfa_token``: the emulator's clock moved past the token's expiry (real time
  against a tenant), then the token used once more.
* ``push``: the emulator's push policy for the user (``manual``: a person answers).
* ``refresh``, ``userinfo``: the tokens of the user's last login, kept in memory for the
  journey; ``wait``: real time.
"""

from __future__ import annotations

import asyncio
import functools
import string
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import structlog

from flowengine.api import AuthClient
from flowengine.clock import OffsetClock
from flowengine.engine import Engine, error_kind_name
from flowengine.errors import ApiError, FlowError
from flowengine.factors import CodeSource, get_strategy
from flowengine.factors.otp import TOTP_PERIOD, totp_code
from flowengine.journeys import mfa
from flowengine.journeys.control import (
    DEFAULT_MFA_TOKEN_LIFETIME,
    EmulatorControl,
    mfa_token_expiry,
)
from flowengine.journeys.observe import (
    JourneyUser,
    Stopped,
    failed,
    observed_from_login,
    observed_from_reply,
)
from flowengine.journeys.results import Observed
from flowengine.log import mask_secrets
from flowengine.replies import Authenticator, ErrorKind, ErrorReply, MfaRequired, TokenSet
from flowengine.spec import (
    Delete,
    Enroll,
    ExpireMfaToken,
    ListAuthenticators,
    Login,
    Push,
    RecoveryCode,
    Refresh,
    Repeat,
    Step,
    Userinfo,
    Wait,
    WrongCode,
)

__all__ = ["MAX_EXPIRY_WAIT", "StepActions"]

MAX_EXPIRY_WAIT = 900.0
"""Longest real wait for an ``mfa_token`` to expire when no control API moves the clock."""

_PUSH_MODES = {"approve": "approve", "reject": "reject", "ignore": "never", "manual": "manual"}
_OOB_CODE_FACTORS = ("sms", "voice", "email")
_RECOVERY_ALPHABET = string.ascii_uppercase + string.digits

_log = structlog.get_logger("flowengine.journeys")


class StepActions:
    """Runs one step for one user and says what it observed."""

    def __init__(
        self,
        *,
        engine: Engine,
        mfa_engine: Engine,
        no_enroll_engine: Engine,
        control: EmulatorControl,
        code_source: CodeSource,
        otp_counters: dict[str, int],
        stop: asyncio.Event,
        step_timeout: float,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.mfa_engine = mfa_engine
        self.no_enroll_engine = no_enroll_engine
        self.control = control
        self.code_source = code_source
        self.otp_counters = otp_counters
        self.step_timeout = step_timeout
        self._stop = stop
        self._notify = notify
        self._handlers: dict[type[Step], Callable[[Any, JourneyUser], Awaitable[Observed]]] = {
            Login: self.login,
            Enroll: functools.partial(mfa.enroll, self),
            WrongCode: self.wrong_code,
            ExpireMfaToken: self.expire_mfa_token,
            RecoveryCode: self.recovery_code,
            Push: self.push,
            ListAuthenticators: functools.partial(mfa.list_authenticators, self),
            Delete: functools.partial(mfa.delete, self),
            Refresh: self.refresh,
            Userinfo: self.userinfo,
            Wait: self.wait,
        }

    @property
    def api(self) -> AuthClient:
        """The API client over the run's one session."""
        return self.engine.api

    def notify(self, message: str) -> None:
        """Tell the person running the journeys (a push to answer, a long wait)."""
        _log.info("journey.notice", message=message)
        if self._notify is not None:
            self._notify(message)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time; :class:`Stopped` if the run stops first."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Stopped

    # -- one step ------------------------------------------------------------------------

    async def run(self, step: Step, user: JourneyUser) -> Observed:
        """Run ``step`` once for ``user``; API errors and failed flows are outcomes."""
        if isinstance(step, Repeat):
            raise TypeError("repeat is run by the journey runner")
        handler = self._handlers[type(step)]
        before = self._recovery_code(user)
        started = self.engine.clock.monotonic()
        try:
            if isinstance(step, Login | RecoveryCode | Wait | ExpireMfaToken):
                observed = await handler(step, user)  # bounded by the login / their own limits
            else:
                # Enroll and delete may log in and then enroll: twice the flow timeout.
                async with asyncio.timeout(self.step_timeout * 2):
                    observed = await handler(step, user)
        except (ApiError, FlowError) as exc:
            observed = Observed(
                outcome="timeout" if isinstance(exc, TimeoutError) else "failed",
                error=error_kind_name(exc),
                description=str(exc),
            )
        except TimeoutError:
            observed = Observed(
                outcome="timeout",
                error="step_timeout",
                description=f"the step took longer than {self.step_timeout * 2:g} s",
            )
        seconds = self.engine.clock.monotonic() - started
        changes: dict[str, Any] = {"seconds": seconds}
        if isinstance(step, Login | Enroll | RecoveryCode):
            after = self._recovery_code(user)
            changes["recovery_code"] = "issued" if after and after != before else "unchanged"
        return attrs.evolve(observed, **changes)

    def _recovery_code(self, user: JourneyUser) -> str | None:
        record = self.engine.credentials.get(user.spec.username)
        return record.recovery_code if record is not None else None

    # -- helpers -------------------------------------------------------------------------

    async def password_grant(self, user: JourneyUser) -> MfaRequired | TokenSet | ErrorReply:
        config = self.engine.config
        return await self.api.password_grant(
            user.spec.username,
            user.spec.password,
            audience=config.audience,
            scope=config.scope,
            realm=config.realm,
        )

    async def fresh_mfa_token(self, user: JourneyUser) -> str | Observed:
        """A fresh ``mfa_token`` from the password grant, or what prevented one."""
        reply = await self.password_grant(user)
        if isinstance(reply, MfaRequired):
            return reply.mfa_token
        if isinstance(reply, ErrorReply):
            return observed_from_reply(reply)
        return failed("mfa_not_required", "the tenant did not ask this user for MFA")

    async def mfa_api_token(self, user: JourneyUser) -> str | Observed:
        """An access token for the MFA API, from a login with an enrolled factor."""
        spec = user.spec
        self._push_notice(user, None)
        result = await self.mfa_engine.login(
            spec.username, spec.password, phone=spec.phone, email=spec.email
        )
        if result.ok and result.tokens is not None:
            return result.tokens.access_token
        observed = observed_from_login(result)
        reason = observed.description or observed.error
        return attrs.evolve(observed, description=f"getting an MFA API token: {reason}")

    def _push_notice(self, user: JourneyUser, factor: str | None) -> None:
        if user.push == "manual" and factor in (None, "push"):
            self.notify(f"{user.spec.username}: answer the push on the user's phone")

    # -- the steps -----------------------------------------------------------------------

    async def login(
        self, step: Login, user: JourneyUser, *, engine: Engine | None = None
    ) -> Observed:
        """Engine.login with the factor (``any``: the first usable enrolled one)."""
        factor = None if step.factor == "any" else step.factor
        self._push_notice(user, factor)
        spec = user.spec
        result = await (engine or self.engine).login(
            spec.username, spec.password, factor=factor, phone=spec.phone, email=spec.email
        )
        if result.ok and result.tokens is not None:
            user.keep(result.tokens)
        return observed_from_login(result)

    async def recovery_code(self, step: RecoveryCode, user: JourneyUser) -> Observed:
        """Engine.login with the stored recovery code (the new one is stored); a user with
        nothing enrolled fails (``not_enrolled``) instead of enrolling."""
        login = Login(path=step.path, factor="recovery-code")
        return await self.login(login, user, engine=self.no_enroll_engine)

    async def wrong_code(self, step: WrongCode, user: JourneyUser) -> Observed:
        """The factor's grant with ``times`` wrong codes; stops early once locked."""
        mfa_token = await self.fresh_mfa_token(user)
        if isinstance(mfa_token, Observed):
            return mfa_token
        authenticator_id = None
        if step.factor in _OOB_CODE_FACTORS:
            listed = await self.api.list_authenticators(mfa_token)
            if isinstance(listed, ErrorReply):
                return observed_from_reply(listed)
            found = get_strategy(step.factor).find(listed)
            if found is None:
                return failed("factor_not_enrolled", f"the user has no active {step.factor}")
            authenticator_id = found.id
        oob_code: str | None = None
        reply: TokenSet | MfaRequired | ErrorReply | None = None
        attempts = 0
        for _ in range(step.times * 2):  # a slow_down or expiry costs a turn, not a code
            if attempts >= step.times:
                break
            if authenticator_id is not None and oob_code is None:
                challenge = await self.api.challenge(
                    mfa_token, challenge_type="oob", authenticator_id=authenticator_id
                )
                if isinstance(challenge, ErrorReply):
                    return observed_from_reply(challenge, attempts=attempts)
                oob_code = challenge.oob_code or ""
            reply = await self._submit_wrong(step.factor, mfa_token, oob_code, user)
            if not isinstance(reply, ErrorReply):
                break  # a wrong code was accepted
            if reply.kind in (ErrorKind.SLOW_DOWN, ErrorKind.EXPIRED_TOKEN):
                renewed = await self.fresh_mfa_token(user)
                if isinstance(renewed, Observed):
                    return renewed
                mfa_token, oob_code = renewed, None
                continue
            attempts += 1
            if reply.kind is ErrorKind.TOO_MANY_ATTEMPTS:
                break
        if isinstance(reply, ErrorReply):
            return observed_from_reply(reply, attempts=attempts)
        return Observed(outcome="success", reply={"attempts": attempts, "accepted": True})

    async def _submit_wrong(
        self, factor: str, mfa_token: str, oob_code: str | None, user: JourneyUser
    ) -> TokenSet | MfaRequired | ErrorReply:
        record = self.engine.credentials.get(user.spec.username)
        if factor == "recovery-code":
            stored = record.recovery_code if record is not None else None
            code = stored
            while code == stored:
                code = "".join(user.rng.choice(_RECOVERY_ALPHABET) for _ in range(24))
            return await self.api.recovery_code_grant(mfa_token, code or "")
        right: set[str] = set()
        if factor == "otp" and record is not None and record.otp_secret:
            now = self.engine.clock.time()
            right = {totp_code(record.otp_secret, now + d * TOTP_PERIOD) for d in (-1, 0, 1)}
        code = f"{user.rng.randrange(10**6):06d}"
        while code in right:
            code = f"{user.rng.randrange(10**6):06d}"
        if factor == "otp":
            return await self.api.otp_grant(mfa_token, code)
        return await self.api.oob_grant(mfa_token, oob_code or "", binding_code=code)

    async def expire_mfa_token(self, step: ExpireMfaToken, user: JourneyUser) -> Observed:
        """Get an mfa_token, move time past its expiry, then use it."""
        authenticator: Authenticator | None = None
        async with asyncio.timeout(self.step_timeout):
            mfa_token = await self.fresh_mfa_token(user)
            if isinstance(mfa_token, Observed):
                return mfa_token
            if step.factor not in ("any", "recovery-code"):
                listed = await self.api.list_authenticators(mfa_token)
                if isinstance(listed, ErrorReply):
                    return observed_from_reply(listed)
                authenticator = get_strategy(step.factor).find(listed)
                if authenticator is None:
                    return failed("factor_not_enrolled", f"the user has no active {step.factor}")
        clock = self.engine.clock
        expiry = mfa_token_expiry(mfa_token) or clock.time() + DEFAULT_MFA_TOKEN_LIFETIME
        wait = max(expiry - clock.time(), 0.0) + 1.0
        moved = await self.control.advance_clock(wait)
        if moved is not None:
            if isinstance(clock, OffsetClock):
                clock.catch_up(moved)  # TOTP codes and token checks follow the emulator
        elif wait > MAX_EXPIRY_WAIT:
            return failed(
                "expiry_too_far", f"the mfa_token expires in {wait:.0f} s; flowengine waits"
                f" at most {MAX_EXPIRY_WAIT:g} s without a control API to move the clock"
            )  # fmt: skip
        else:
            self.notify(f"{user.spec.username}: waiting {wait:.0f} s for the mfa_token to expire")
            await self.sleep(wait)
        async with asyncio.timeout(self.step_timeout):
            if authenticator is None:
                used: Any = await self.api.list_authenticators(mfa_token)
            else:
                kind = "otp" if authenticator.authenticator_type == "otp" else "oob"
                used = await self.api.challenge(
                    mfa_token, challenge_type=kind, authenticator_id=authenticator.id
                )
        if isinstance(used, ErrorReply):
            return observed_from_reply(used, advanced_s=round(wait, 3))
        return Observed(outcome="success", reply={"still_valid": True, "advanced_s": wait})

    async def push(self, step: Push, user: JourneyUser) -> Observed:
        """Set how the user's next pushes are answered (emulator control API)."""
        answer = step.answer
        accepted = await self.control.set_push(user.spec.username, _PUSH_MODES[answer])
        if not accepted and answer != "manual":
            return failed(
                "no_control_api",
                f"push: {answer} needs the emulator's control API; against a tenant, use"
                " push: manual and answer on the phone",
            )
        user.push = answer
        if answer == "manual" and not accepted:
            self.notify(f"{user.spec.username}: pushes are answered by hand from now on")
        return Observed(outcome="success", reply={"push": answer})

    async def refresh(self, step: Refresh, user: JourneyUser) -> Observed:
        """The refresh_token grant with the refresh token of the last login."""
        if user.refresh_token is None:
            return failed(
                "no_refresh_token",
                "no refresh token yet: log in first (with offline_access in the scope)",
            )
        reply = await self.api.refresh_token_grant(user.refresh_token)
        if isinstance(reply, ErrorReply):
            return observed_from_reply(reply)
        if isinstance(reply, MfaRequired):
            return failed("mfa_required", "the refresh asked for MFA again")
        rotated = reply.refresh_token is not None and reply.refresh_token != user.refresh_token
        user.keep(reply)
        return Observed(outcome="success", reply={"rotated": rotated})

    async def userinfo(self, step: Userinfo, user: JourneyUser) -> Observed:
        """GET /userinfo with the access token of the last login (or refresh)."""
        if user.tokens is None:
            return failed("no_access_token", "no access token yet: log in first")
        reply = await self.api.userinfo(user.tokens.access_token)
        if isinstance(reply, ErrorReply):
            return observed_from_reply(reply)
        return Observed(outcome="success", reply=mask_secrets({"sub": reply.get("sub")}))

    async def wait(self, step: Wait, user: JourneyUser) -> Observed:
        """Pause this user (real time; a stop of the run ends it)."""
        await self.sleep(step.seconds)
        return Observed(outcome="success")
