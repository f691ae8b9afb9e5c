"""The engine: one call takes a user through the password grant and MFA to tokens.

One :class:`Engine` owns (or borrows) one ``aiohttp.ClientSession`` over one connector, a
FIFO gate in front of it, a credential store and a code source; every login, one or ten
thousand at once, runs the same compiled state table (:mod:`flowengine.machine`). Each
state's handler does that state's I/O and returns the trigger that leads on; the runner
looks the next state up. Nothing runs inside transitions' callbacks, so cancellation and
timeouts work as asyncio intends.

>>> async with Engine(domain="tenant.auth0.com", client_id=..., client_secret=...) as engine:
...     result = await engine.login("alice@example.test", password, factor="otp")
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Final

import aiohttp
import attrs
import structlog

from flowengine.api import AuthClient, make_session
from flowengine.clock import Clock, SystemClock
from flowengine.config import EngineConfig, PoolLimits, PushPolling
from flowengine.credentials import (
    CredentialStore,
    InMemoryCredentials,
    StoredAuthenticator,
    UserCredentials,
)
from flowengine.errors import (
    ApiError,
    FactorTimeout,
    FlowEngineError,
    FlowError,
    ProtocolError,
    RequestTimeout,
    StepTimeout,
    TokenValidationError,
    TransportError,
)
from flowengine.factors import (
    CodeSource,
    EmulatorInbox,
    FactorStrategy,
    Pending,
    get_strategy,
    registered_factors,
)
from flowengine.gate import Deadlines, FifoGate
from flowengine.idtoken import JwksCache
from flowengine.lockout import FailedCodeLedger
from flowengine.machine import FINAL_STATES, INITIAL_STATE, TABLE, next_state
from flowengine.replies import (
    Authenticator,
    ErrorKind,
    ErrorReply,
    MfaRequired,
    TokenSet,
)
from flowengine.result import FAILED, SUCCESS, TIMEOUT, LoginResult, StepRecord
from flowengine.retry import RetryingApi

__all__ = ["Engine", "error_kind_name"]

_UNSET: Final[Any] = object()
_NO_LIMIT: Final = contextlib.nullcontext()
_OK: Final = "ok"
_ERROR_NAMES: Final[dict[type[BaseException], str]] = {}


def error_kind_name(error: ErrorReply | BaseException) -> str:
    """A short, stable name for what went wrong: ``invalid_code``, ``transport_error``..."""
    if isinstance(error, ErrorReply):
        if error.kind is ErrorKind.TOO_MANY_ATTEMPTS:
            return "locked"  # brute-force protection or the failed-code bucket
        return error.kind.name.lower()
    cls = type(error)
    name = _ERROR_NAMES.get(cls)
    if name is None:
        # CamelCase -> snake_case, once per class.
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in cls.__name__).lstrip("_")
        _ERROR_NAMES[cls] = name
    return name


class Engine:
    """Logs users in through the password grant and MFA, over one shared pool.

    Pass ``domain`` (or a full ``http(s)://`` base URL), the client, and optionally an
    ``aiohttp.ClientSession`` of yours (it is borrowed, not closed), a credential store
    (default: in memory), a code source for SMS/voice/email codes (default: the emulator's
    control API at the same address), and any :class:`~flowengine.config.EngineConfig`
    field as a keyword.
    """

    def __init__(
        self,
        *,
        domain: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        config: EngineConfig | None = None,
        session: aiohttp.ClientSession | None = None,
        credentials: CredentialStore | None = None,
        code_source: CodeSource | None = None,
        clock: Clock | None = None,
        login_timeout: float | None = _UNSET,
        request_timeout: float | None = _UNSET,
        step_timeout: float | None = _UNSET,
        max_in_flight: int | None = None,
        connection_limit: int | None = None,
        push: PushPolling | None = None,
        **options: Any,
    ) -> None:
        if config is None:
            if domain is None or client_id is None:
                raise TypeError("Engine needs domain= and client_id= (or config=)")
            config = EngineConfig(
                base_url=EngineConfig.normalise_base_url(domain),
                client_id=client_id,
                client_secret=client_secret,
                **options,
            )
        elif domain is not None or client_id is not None or options:
            raise TypeError("pass either config= or the individual settings, not both")
        timeouts = config.timeouts
        given = {
            name: value
            for name, value in (
                ("login", login_timeout),
                ("request", request_timeout),
                ("step", step_timeout),
            )
            if value is not _UNSET
        }
        if given:
            timeouts = attrs.evolve(timeouts, **given)
        pool = config.pool
        if max_in_flight is not None or connection_limit is not None:
            pool = PoolLimits(
                connections=connection_limit or pool.connections,
                in_flight=max_in_flight or pool.in_flight,
            )
        self.config: EngineConfig = attrs.evolve(
            config, timeouts=timeouts, pool=pool, push=push or config.push
        )
        for name in self.config.factor_order:
            get_strategy(name)  # fail now on an unknown factor name
        self.clock: Clock = clock or SystemClock()
        self.credentials: CredentialStore = (
            credentials if credentials is not None else InMemoryCredentials()
        )
        self.gate = FifoGate(self.config.pool.in_flight)
        self.deadlines = Deadlines()
        """The time limits of the logins (and steps) in flight, on one timer per limit."""
        self._session = session
        self._owns_session = session is None
        self._code_source = code_source
        self._api: AuthClient | None = None
        self._jwks: JwksCache | None = None
        self.otp_counters: dict[str, int] = {}
        """Per user, the last TOTP time step this engine submitted (codes are single use);
        engines that log the same users in may share one dict."""
        self.ledger = FailedCodeLedger(self.config.lockout, self.clock.monotonic)
        """Our account of each user's failed-code buckets (see :mod:`flowengine.lockout`)."""
        self._rng = random.Random()
        self._flow_ids = itertools.count(1)
        self._log = structlog.get_logger("flowengine.engine")

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the session (unless one was given) and the API client."""
        if self._api is not None:
            return
        if self._session is None:
            self._session = make_session(limit=self.config.pool.connections)
        config = self.config
        self._api = AuthClient(
            self._session,
            config.base_url,
            client_id=config.client_id,
            client_secret=config.client_secret,
            auth_method=config.auth_method,  # type: ignore[arg-type]
            request_timeout=config.timeouts.request,
        )
        if self._code_source is None:
            self._code_source = EmulatorInbox(self._session, config.base_url)
        self._jwks = JwksCache(self._api.jwks, clock=self.clock)

    async def close(self) -> None:
        """Close the session if the engine opened it."""
        session, self._session = self._session, None
        self._api = None
        if session is not None and self._owns_session:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The one session every login uses."""
        if self._session is None:
            raise RuntimeError("the engine is not started: use 'async with Engine(...)'")
        return self._session

    @property
    def api(self) -> AuthClient:
        """The Authentication API client over the shared session."""
        if self._api is None:
            raise RuntimeError("the engine is not started: use 'async with Engine(...)'")
        return self._api

    # -- logging in -----------------------------------------------------------------------

    async def login(
        self,
        username: str,
        password: str,
        *,
        factor: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        timeout: float | None = _UNSET,  # noqa: ASYNC109 (a per-login limit is the API asked for)
    ) -> LoginResult:
        """Log ``username`` in; returns how it ended (it raises only on cancellation).

        ``factor`` names the factor to use (and to enroll when the user has none active);
        without it the first usable enrolled factor in ``config.factor_order`` is used.
        """
        if factor is not None:
            get_strategy(factor)
        api = self.api
        started = self.clock.monotonic()
        login = _Login(self, api, username, password, factor, phone, email)
        limit = self.config.timeouts.login if timeout is _UNSET else timeout
        gate = self.gate
        if not gate.try_acquire():
            await gate.acquire()
        login.holding = True
        try:
            login.mark = admitted = self.clock.monotonic()
            login.path.append(StepRecord("queue", admitted - started, _OK))
            try:
                with _NO_LIMIT if limit is None else self.deadlines.timeout(limit):
                    # Fire triggers until a final state; the table decides where each one
                    # leads (inline here: one coroutine frame less under every request).
                    state = login.state
                    step_timeout = self.config.timeouts.step
                    while state not in FINAL_STATES:
                        login.state = state
                        if step_timeout is None:
                            trigger = await _HANDLERS[state](login)
                        else:
                            trigger = await login.run_step(_HANDLERS[state], step_timeout)
                        state = TABLE.get((state, trigger)) or next_state(state, trigger)
                    if state == "token":
                        login.state = state
                        await login.on_token()
            except (FactorTimeout, StepTimeout) as exc:
                login.failed_by(exc, outcome=TIMEOUT)
            except FlowEngineError as exc:
                login.failed_by(exc)
            except TimeoutError:
                login.outcome = TIMEOUT
                login.error = "flow_timeout"
                login.error_description = f"the login took longer than {limit:g} s"
        finally:
            if login.holding:
                gate.release()
        result = login.result(self.clock.monotonic() - started)
        if login.log is not None:
            login.log.debug(
                "login.end",
                flow_id=login.flow_id,
                user=username,
                outcome=result.outcome,
                error=result.error,
                steps=len(result.path),
            )
        return result

    def _debug_log(self) -> Any:
        """The logger for a login's debug events, or None when they would go nowhere.

        A library stays silent until its user configures structlog (whose defaults would
        print every debug event); the CLI and capture_logs() configure it. Resolved once per
        login, so a filtered-out level costs nothing per step.
        """
        if not structlog.is_configured():
            return None
        log = self._log.bind()
        enabled = getattr(log, "is_enabled_for", None)
        if enabled is not None and not enabled(logging.DEBUG):
            return None
        return log

    async def validate_id_token(self, id_token: str) -> None:
        """Check an id_token against the tenant's JWKS: signature, iss, aud, exp."""
        if self._jwks is None:
            raise RuntimeError("the engine is not started")
        await self._jwks.verify(
            id_token,
            issuer=f"{self.config.base_url}/",
            audience=self.config.client_id,
        )


class _Login:
    """One login in progress; it is also the :class:`FactorContext` its strategy sees."""

    __slots__ = (
        "__weakref__",
        "api",
        "authenticator",
        "chained",
        "clock",
        "code_source",
        "config",
        "credentials",
        "email",
        "engine",
        "enrolled",
        "error",
        "error_description",
        "factor_name",
        "flow_id",
        "holding",
        "log",
        "mark",
        "mark_waited",
        "mfa_token",
        "otp_counters",
        "outcome",
        "password",
        "path",
        "pending",
        "phone",
        "restarts",
        "retries",
        "state",
        "status",
        "strategy",
        "tokens",
        "used_factors",
        "username",
        "waited",
    )

    def __init__(
        self,
        engine: Engine,
        api: AuthClient,
        username: str,
        password: str,
        factor: str | None,
        phone: str | None,
        email: str | None,
    ) -> None:
        self.engine = engine
        self.clock = engine.clock
        self.retries: list[str] = []
        self.config = engine.config
        # The wrapper reaches back to the login only when it retries, through a weak
        # proxy: a strong reference would be a cycle, leaving every finished login to the
        # garbage collector.
        self.api = RetryingApi(api, self.config.retry, weakref.proxy(self), engine._rng)
        self.code_source = engine._code_source
        self.otp_counters = engine.otp_counters
        self.flow_id = next(engine._flow_ids)
        self.username = username
        self.password = password
        self.factor_name = factor
        self.phone = phone
        self.email = email
        stored = engine.credentials.get(username)
        self.credentials = stored or UserCredentials(
            username=username, phone_number=phone, email=email
        )
        self.mfa_token = ""
        self.strategy: FactorStrategy | None = None
        self.authenticator: Authenticator | None = None
        self.pending = Pending()
        self.path: list[StepRecord] = []
        self.tokens: TokenSet | None = None
        self.restarts = 0
        self.chained = 0
        self.used_factors: list[str] = []
        self.enrolled = False
        self.holding = False
        self.waited = 0.0
        self.mark = 0.0
        """When the last step (or the queue) ended: where the next step starts."""
        self.mark_waited = 0.0
        """:attr:`waited` at :attr:`mark`: waits since then are not the next step's time."""
        self.state = INITIAL_STATE
        self.outcome = FAILED
        self.error: str | None = None
        self.error_description: str | None = None
        self.status: int | None = None
        self.log = engine._debug_log()

    # -- FactorContext --------------------------------------------------------------------

    def save(self, record: UserCredentials) -> None:
        """Store what a step learned before the flow goes on."""
        self.credentials = record
        self.engine.credentials.put(record)

    def retry_allowed(self) -> bool:
        """Whether this login's retry budget has a retry left."""
        return len(self.retries) < self.config.retry.budget

    def now(self) -> float:
        """Wall-clock time."""
        return self.clock.time()

    async def wait(self, seconds: float, step: str) -> None:
        """Sleep without holding a gate slot, then queue again; recorded as ``step``."""
        started = self.clock.monotonic()
        gate = self.engine.gate
        if self.holding:
            gate.release()
            self.holding = False
        await self.clock.sleep(seconds)
        await gate.acquire()
        self.holding = True
        seconds = self.clock.monotonic() - started
        self.waited += seconds
        self.path.append(StepRecord(step, seconds, _OK))

    # -- the run (its loop is in Engine.login) --------------------------------------------

    async def run_step(self, handler: _Handler, limit: float) -> str:
        """Run one state's handler within the per-step timeout."""
        try:
            with self.engine.deadlines.timeout(limit):
                return await handler(self)
        except TimeoutError as exc:
            if isinstance(exc, FlowEngineError):
                raise  # a request timeout, not the step's
            raise StepTimeout(
                f"step {self.state!r} took longer than {limit:g} s", state=self.state
            ) from None

    def step(self, name: str, started: float, outcome: str = _OK) -> None:
        """Record step ``name``, begun at ``started``, less the time spent in :meth:`wait`
        since then (a retry's backoff, an OTP window: recorded as steps of their own).

        A step begins where the one before it ended (:attr:`mark`): one clock reading per
        step, and the few microseconds between two steps count in the later one.
        """
        now = self.clock.monotonic()
        seconds = now - started - (self.waited - self.mark_waited)
        self.mark = now
        self.mark_waited = self.waited
        self.path.append(StepRecord(name, seconds, outcome))
        if self.log is not None:
            self.log.debug(
                "login.step", flow_id=self.flow_id, user=self.username, step=name, outcome=outcome
            )

    def fail(self, error: str, description: str, status: int | None = None) -> str:
        self.error = error
        self.error_description = description
        self.status = status
        return "fail"

    def on_error_reply(self, reply: ErrorReply) -> str:
        """Restart on an expired mfa_token (bounded), fail on anything else."""
        if reply.kind is ErrorKind.EXPIRED_TOKEN and self.restarts < self.config.max_restarts:
            self.restarts += 1
            self.mfa_token = ""
            self.pending = Pending()
            return "restart"
        return self.fail(error_kind_name(reply), reply.error_description, reply.status)

    def failed_by(self, exc: FlowEngineError, *, outcome: str = FAILED) -> None:
        self.outcome = outcome
        self.error = error_kind_name(exc)
        self.error_description = str(exc)
        if isinstance(exc, ApiError):
            self.status = exc.status
        if isinstance(exc, FlowError) and exc.factor and self.factor_name is None:
            self.factor_name = exc.factor

    async def on_password(self) -> str:
        started = self.mark
        config = self.config
        reply = await self.api.password_grant(
            self.username,
            self.password,
            audience=config.audience,
            scope=config.scope,
            realm=config.realm,
        )
        if isinstance(reply, MfaRequired):
            self.step("password", started)
            self.mfa_token = reply.mfa_token
            return "mfa_required"
        if isinstance(reply, TokenSet):
            self.step("password", started)
            self.tokens = reply
            return "tokens_issued"
        self.step("password", started, error_kind_name(reply))
        return self.fail(error_kind_name(reply), reply.error_description, reply.status)

    async def on_mfa_required(self) -> str:
        return "list_authenticators"

    async def on_authenticators(self) -> str:
        started = self.mark
        reply = await self.api.list_authenticators(self.mfa_token)
        if isinstance(reply, ErrorReply):
            self.step("authenticators", started, error_kind_name(reply))
            return self.on_error_reply(reply)
        self.step("authenticators", started)
        self.learn(reply)
        has_active = False
        for authenticator in reply:
            if authenticator.active:
                has_active = True
                break
        strategy = self.choose(reply, has_active)
        if strategy is None:
            return "fail"
        self.strategy = strategy
        if not has_active:
            return "enroll"
        if self.authenticator is None:
            self.authenticator = strategy.find(reply)
        self.pending = Pending(
            authenticator_id=self.authenticator.id if self.authenticator else None
        )
        return "challenge" if strategy.needs_challenge(self) else "verify"

    def choose(
        self, authenticators: list[Authenticator], has_active: bool
    ) -> FactorStrategy | None:
        """The factor this login uses; None (with the error set) when there is none."""
        config = self.config
        if not has_active:
            if not config.enroll:
                return self._no_factor("not_enrolled", "the user has no active authenticator")
            if self.factor_name is not None and get_strategy(self.factor_name).can_enroll:
                return get_strategy(self.factor_name)
            # No factor asked, or one that cannot be enrolled (a recovery code comes with
            # the first enrollment): enroll the first enrollable factor of the order.
            for name in config.factor_order:
                if get_strategy(name).can_enroll:
                    return get_strategy(name)
            return self._no_factor("cannot_enroll", "no factor of factor_order can be enrolled")
        self.authenticator = None
        if self.factor_name is not None:
            strategy = get_strategy(self.factor_name)
            self.authenticator = strategy.find(authenticators)
            if self.authenticator is None:
                return self._no_factor(
                    "factor_not_enrolled",
                    f"the user has active authenticators, but no {self.factor_name!r}",
                )
            if not strategy.usable(self):
                return self._no_factor(
                    "missing_credential",
                    f"the user has {self.factor_name!r} enrolled, but no stored credential for it",
                )
            return strategy
        for name in config.factor_order:
            if name in self.used_factors:
                continue
            strategy = get_strategy(name)
            found = strategy.find(authenticators)
            if found is not None and strategy.usable(self):
                self.authenticator = found
                return strategy
        return self._no_factor(
            "no_usable_factor", "none of the user's enrolled factors can be used by this engine"
        )

    def _no_factor(self, error: str, description: str) -> FactorStrategy | None:
        self.fail(error, description)
        return None

    def learn(self, authenticators: list[Authenticator]) -> None:
        """Remember the user's authenticators; write only when they changed."""
        known = self.credentials.authenticators
        if len(known) == len(authenticators):
            for k, a in zip(known, authenticators, strict=True):
                if k.id != a.id or k.active != a.active:
                    break
            else:
                return
        stored = tuple(
            StoredAuthenticator(id=a.id, factor=_factor_of(a), active=a.active)
            for a in authenticators
        )
        self.save(attrs.evolve(self.credentials, authenticators=stored))

    async def on_associate(self) -> str:
        assert self.strategy is not None
        started = self.mark
        reply = await self.strategy.enroll(self)
        if isinstance(reply, ErrorReply):
            self.step("associate", started, error_kind_name(reply))
            return self.on_error_reply(reply)
        self.step("associate", started)
        self.pending = reply
        self.enrolled = True
        return "verify"

    async def on_challenge(self) -> str:
        assert self.strategy is not None
        assert self.authenticator is not None
        started = self.mark
        reply = await self.strategy.challenge(self, self.authenticator)
        if isinstance(reply, ErrorReply):
            self.step("challenge", started, error_kind_name(reply))
            return self.on_error_reply(reply)
        self.step("challenge", started)
        self.pending = reply
        return "verify"

    async def on_verify(self) -> str:
        strategy = self.strategy
        assert strategy is not None
        bucket = strategy.code_bucket
        ledger = self.engine.ledger
        if bucket is not None and not ledger.allowed(self.username, bucket):
            policy = self.config.lockout
            spent = ledger.spent(self.username, bucket)
            if ledger.exhausted(self.username, bucket):
                # Auth0 would answer the right code like a wrong one now: say so instead.
                return self.fail("locked", f"{spent:.0f} failed codes: the user is locked out")
            return self.fail(
                "lockout_guard",
                f"{spent:.0f} failed codes recently: stopped before Auth0's lockout"
                f" ({policy.share:.0%} of {policy.burst} may be spent)",
            )
        started = self.mark
        step = f"grant:{strategy.grant}"
        try:
            reply = await strategy.verify(self, self.pending)
        except (TransportError, RequestTimeout, ProtocolError) as exc:
            # The code may have been spent: never send it again; start over with a new one.
            self.step(step, started, error_kind_name(exc))
            if self.restarts < self.config.max_restarts and self.retry_allowed():
                return self.start_over(step)
            raise
        if isinstance(reply, TokenSet):
            self.step(step, started)
            self.tokens = reply
            self.used_factors.append(strategy.name)
            if self.pending.enrolling:
                self.save(self.credentials.with_enrolled(strategy.name))
            return "tokens_issued"
        if isinstance(reply, MfaRequired):
            self.step(step, started)
            self.used_factors.append(strategy.name)
            self.chained += 1
            if self.chained > self.config.max_chained:
                return self.fail("mfa_chain_too_long", "mfa_required came back too many times")
            self.mfa_token = reply.mfa_token
            self.factor_name = None
            return "mfa_required"
        self.step(step, started, error_kind_name(reply))
        delay = strategy.retry_delay(self, self.pending, reply)
        if delay is not None:
            await self.wait(delay, "push_wait" if strategy.name == "push" else "retry_wait")
            return "retry"
        if bucket is not None:
            if reply.kind is ErrorKind.INVALID_CODE:
                ledger.record_failure(self.username, bucket)
            elif reply.kind is ErrorKind.TOO_MANY_ATTEMPTS:
                ledger.record_locked(self.username, bucket)
            elif reply.kind is ErrorKind.SERVER_ERROR and (
                self.restarts < self.config.max_restarts and self.retry_allowed()
            ):
                return self.start_over(step)
        return self.on_error_reply(reply)

    def start_over(self, step: str) -> str:
        """Back to the password grant after an attempt whose outcome is unknown."""
        self.restarts += 1
        self.retries.append(step)
        self.mfa_token = ""
        self.pending = Pending()
        return "restart"

    async def on_token(self) -> None:
        self.outcome = SUCCESS
        tokens = self.tokens
        if tokens is not None and tokens.id_token and self.config.validate_id_token:
            started = self.mark
            try:
                await self.engine.validate_id_token(tokens.id_token)
            except TokenValidationError as exc:
                self.step("id_token", started, "invalid_id_token")
                self.outcome = FAILED
                self.error = "invalid_id_token"
                self.error_description = str(exc)
                return
            self.step("id_token", started)

    def result(self, seconds: float) -> LoginResult:
        strategy = self.strategy
        return LoginResult(
            username=self.username,
            outcome=self.outcome,
            tokens=self.tokens if self.outcome == SUCCESS else None,
            path=tuple(self.path),
            seconds=seconds,
            factor=strategy.name if strategy is not None else self.factor_name,
            enrolled=self.enrolled,
            error=self.error,
            error_description=self.error_description,
            status=self.status,
            state=None if self.outcome == SUCCESS else self.state,
            retries=tuple(self.retries),
        )


_Handler = Callable[[_Login], Coroutine[Any, Any, str]]

_HANDLERS: Final[dict[str, _Handler]] = {
    "password": _Login.on_password,
    "mfa_required": _Login.on_mfa_required,
    "authenticators": _Login.on_authenticators,
    "associate": _Login.on_associate,
    "challenge": _Login.on_challenge,
    "verify": _Login.on_verify,
}
"""Each non-final state's handler: it does the state's I/O and returns the next trigger.
One table for every login (a table of bound methods per login would be a reference cycle)."""


def _factor_of(authenticator: Authenticator) -> str:
    for name in registered_factors():
        strategy = get_strategy(name)
        if strategy.matches(authenticator):
            return name
    return authenticator.authenticator_type
