"""Running a scenario: the load models, the stats, the live view and the reports.

A :class:`Runner` owns all of a run's I/O: it starts the embedded emulator (or points at the
scenario's target), builds one :class:`~flowengine.engine.Engine` over one pool, drives
logins with the closed or the open load model, records every step in
:class:`~flowengine.stats.Stats`, and writes the reports. Every loop is bounded by the
scenario's duration and/or iteration count.

- Closed model: N virtual users, each logging in, thinking, and logging in again; a user is
  never in two flows at once (users are taken from a FIFO of free users).
- Open model: flows start on a schedule (rate and stages), whether or not earlier ones have
  finished; a flow's latency is measured from its *intended* start, so any queueing in the
  client shows, and a start that cannot be made (no free user, ``max_in_flight`` reached) is
  counted as missed.
- Journeys (:mod:`flowengine.journeys`) run on the same engine and emulator, alone or next
  to the load (whose users then exclude the journeys' users); a failed expectation makes
  the exit code ``EXPECTATIONS_FAILED``.
"""

from __future__ import annotations

import asyncio
import datetime
import platform
import random
import ssl
import zlib
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import attrs

from flowengine.api import make_session
from flowengine.clock import OffsetClock
from flowengine.config import EngineConfig, PoolLimits, Timeouts
from flowengine.credentials import CredentialStore
from flowengine.credstore import open_store
from flowengine.embedded import (
    EMBEDDED_AUDIENCE,
    EMBEDDED_CLIENT_ID,
    EMBEDDED_CLIENT_SECRET,
    EMBEDDED_SCOPE,
    EmbeddedEmulator,
)
from flowengine.engine import Engine
from flowengine.errors import ConfigError
from flowengine.exitcodes import ExitCode
from flowengine.factors.otp import TOTP_PERIOD
from flowengine.journeys import JourneyRunner, JourneysResult
from flowengine.live import LiveView
from flowengine.report import write_reports
from flowengine.result import LoginResult
from flowengine.spec import ClosedLoad, OpenLoad, PatternUsers, Scenario, UserSpec
from flowengine.stats import Stats, StatsSnapshot
from flowengine.thresholds import ThresholdResult, evaluate, parse_thresholds

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_GRACE",
    "RETRY_OUTCOMES",
    "RunOverrides",
    "RunResult",
    "Runner",
    "SAFE_REMOTE_LOAD",
    "apply_overrides",
    "check_load_is_acknowledged",
    "load_rate",
]

SAFE_REMOTE_LOAD = 2.0
"""The most flows/s (open) or virtual users (closed) a run may put on a remote tenant
without ``--acknowledge-load-test``."""

DEFAULT_GRACE = 10.0
"""Seconds in-flight flows may take to finish after a stop was asked for."""

RETRY_OUTCOMES = frozenset({"authorization_pending", "slow_down"})
"""Step outcomes that mean the step is tried again (counted as retries)."""

DEFAULT_CONNECTIONS = 100
"""Sockets per run: keep on-the-wire concurrency near 100 (measurements.md)."""


@attrs.frozen(kw_only=True)
class RunOverrides:
    """Command-line overrides of a scenario's settings (None: keep the scenario's)."""

    users: int | None = None
    """Closed model: concurrent virtual users."""
    rate: float | None = None
    """Open model: arrivals per second (turns a closed scenario into an open one)."""
    population: int | None = None
    """How many distinct users (generated populations only)."""
    duration: float | None = None
    iterations: int | None = None
    seed: int | None = None
    credentials: str | None = None


@attrs.frozen(kw_only=True)
class RunResult:
    """How a run ended: its figures, its threshold results, its reports and exit code."""

    snapshot: StatsSnapshot
    thresholds: tuple[ThresholdResult, ...]
    reports: dict[str, Path]
    exit_code: ExitCode
    interrupted: bool
    meta: dict[str, Any]
    journeys: JourneysResult | None = None
    """The journeys' results, when the scenario has journeys."""


def apply_overrides(scenario: Scenario, overrides: RunOverrides) -> Scenario:
    """The scenario with the command line's overrides applied."""
    load = scenario.load
    if load is not None:
        if overrides.rate is not None:
            if isinstance(load, ClosedLoad):
                load = OpenLoad(
                    rate=overrides.rate, duration=load.duration, iterations=load.iterations
                )
            else:
                load = attrs.evolve(load, rate=overrides.rate, stages=())
        if overrides.users is not None:
            if not isinstance(load, ClosedLoad):
                raise ValueError("--users sets closed-model concurrency; this run is open-model")
            load = attrs.evolve(load, users=overrides.users)
        if overrides.duration is not None:
            load = attrs.evolve(load, duration=overrides.duration)
        if overrides.iterations is not None:
            load = attrs.evolve(load, iterations=overrides.iterations)
    users = scenario.users
    if overrides.population is not None:
        if not isinstance(users, PatternUsers):
            raise ValueError("--population resizes generated users; this scenario lists its users")
        users = attrs.evolve(users, count=overrides.population)
    changes: dict[str, Any] = {"load": load, "users": users}
    if overrides.seed is not None:
        changes["seed"] = overrides.seed
    if overrides.credentials is not None:
        changes["credentials"] = overrides.credentials
    return attrs.evolve(scenario, **changes)


def load_rate(scenario: Scenario) -> tuple[float, str]:
    """The run's peak load as (number, description): flows/s (open) or virtual users."""
    load = scenario.load
    if load is None:
        return 0.0, "no load"
    if isinstance(load, ClosedLoad):
        return float(load.users), f"{load.users} concurrent virtual users"
    peak = max([load.rate, *(stage.target for stage in load.stages)])
    return peak, f"{peak:g} flows/s"


def check_load_is_acknowledged(scenario: Scenario) -> None:
    """Refuse a load above :data:`SAFE_REMOTE_LOAD` on a tenant that is not on this machine.

    Auth0 requires prior approval of load tests and rate-limits tenants; a run past the
    limit needs ``--acknowledge-load-test`` (``acknowledge_load_test=True``).
    """
    target = scenario.target
    if target is None or target.is_loopback:
        return
    peak, described = load_rate(scenario)
    if peak > SAFE_REMOTE_LOAD:
        raise ConfigError(
            f"target {target.host} is not on this machine and the load is {described}"
            f" (more than {SAFE_REMOTE_LOAD:g}): Auth0 requires prior approval of load tests"
            " and rate-limits tenants; once you have it, pass --acknowledge-load-test",
            source=scenario.source,
            path="load",
        )


class Runner:
    """Runs one scenario's load and journeys; :meth:`stop` asks it to wind down gracefully."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        report_dir: Path | None = None,
        live: LiveView | None = None,
        grace: float = DEFAULT_GRACE,
        connections: int = DEFAULT_CONNECTIONS,
        clock: Callable[[], float] | None = None,
        acknowledge_load_test: bool = False,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if scenario.load is None and not scenario.journeys:
            raise ValueError(f"{scenario.source}: the scenario has neither a load nor journeys")
        if not acknowledge_load_test:
            check_load_is_acknowledged(scenario)
        self.scenario = scenario
        self.load = scenario.load
        self.report_dir = report_dir
        self.live = live
        self.grace = grace
        flows = self._concurrency_of(scenario) if scenario.load is not None else 0
        journey_users = sum(journey.users.count for journey in scenario.journeys)
        self.connections = min(connections, max(1, flows + journey_users))
        self.notify = notify
        """Tells the person running a journey what to do (answer a push) or wait for."""
        self.journeys: JourneyRunner | None = None
        # Real time that the emulator's control API may move forward (expire_mfa_token);
        # the embedded emulator shares it, so its TOTP codes and expiries agree with ours.
        self._clock = OffsetClock()
        self._now = clock or self._clock.monotonic
        self.stats = Stats(clock=self._now)
        self._stop = asyncio.Event()
        self._abort = asyncio.Event()
        self._interrupted = False
        self._free: deque[UserSpec] = deque()
        self._user_freed = asyncio.Event()
        self._factors: dict[str, str] = {}
        self._seed = scenario.seed if scenario.seed is not None else 0
        self._rng = random.Random(self._seed)
        self._in_flight = 0
        self.max_in_flight = 0
        """The most flows that were in flight at once."""
        self._issued = 0
        self._enrolled = 0
        self._engine: Engine | None = None

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop starting flows; flows in flight get the grace period to finish."""
        self._interrupted = True
        self._stop.set()
        if self.journeys is not None:
            self.journeys.stop()

    def abort(self) -> None:
        """Stop at once: flows in flight are cancelled (and counted as cancelled)."""
        self.stop()
        self._abort.set()

    @property
    def waiting(self) -> int:
        """Logins waiting for a connection slot at the engine's gate."""
        return self._engine.gate.waiting if self._engine is not None else 0

    @property
    def in_flight(self) -> int:
        """Flows started and not yet finished."""
        return self._in_flight

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run the scenario to its end (or a stop) and write the reports."""
        scenario = self.scenario
        started_at = datetime.datetime.now(datetime.UTC)
        store = open_store(scenario.credentials)
        try:
            async with AsyncExitStack() as stack:
                engine = await self._start_engine(stack, store)
                self._engine = engine
                busy: set[str] = set()
                if scenario.journeys:
                    self.journeys = JourneyRunner(
                        scenario.journeys,
                        engine=engine,
                        seed=self._seed,
                        step_timeout=scenario.timeouts.flow,
                        push=scenario.push.mode,
                        notify=self.notify,
                    )
                    if self._stop.is_set():
                        self.journeys.stop()
                    busy = self.journeys.usernames()
                if self.load is not None:
                    users = scenario.users.iter_users()
                    self._free.extend(u for u in users if u.username.lower() not in busy)
                    if not self._free:
                        raise ValueError(f"{scenario.source}: the scenario has no users to log in")
                ticker = asyncio.create_task(self._tick())
                try:
                    await self._run_all()
                finally:
                    ticker.cancel()
                    await asyncio.gather(ticker, return_exceptions=True)
        finally:
            if self._clock.offset and scenario.target is None:
                _forget_future_otp_steps(store, self._clock)
            store.close()
        return self._finish(started_at)

    async def _run_all(self) -> None:
        """The journeys and the load, side by side; an error in either is raised."""
        tasks: list[asyncio.Task[Any]] = []
        if self.journeys is not None:
            tasks.append(asyncio.create_task(self.journeys.run()))
        if isinstance(self.load, ClosedLoad):
            tasks.append(asyncio.create_task(self._run_closed(self.load)))
        elif self.load is not None:
            tasks.append(asyncio.create_task(self._run_open(self.load)))
        await self._wait_for(tasks)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error

    async def _start_engine(self, stack: AsyncExitStack, store: CredentialStore) -> Engine:
        scenario = self.scenario
        ssl_context: ssl.SSLContext | None = None
        if scenario.target is None:
            emulator = EmbeddedEmulator.for_scenario(
                scenario, scenario.users, store.all(), clock=self._clock
            )
            await stack.enter_async_context(emulator)
            emulator.set_push_policy(scenario.push.mode, scenario.push.after)
            config = EngineConfig(
                base_url=emulator.base_url,
                client_id=EMBEDDED_CLIENT_ID,
                client_secret=EMBEDDED_CLIENT_SECRET,
                audience=EMBEDDED_AUDIENCE,
                scope=EMBEDDED_SCOPE,
            )
        else:
            target = scenario.target
            config = EngineConfig(
                base_url=target.base_url,
                client_id=target.client_id,
                client_secret=target.client_secret,
                auth_method=target.auth_method,
                audience=target.audience,
                scope=target.scope,
                realm=target.realm,
            )
            if target.ca_bundle is not None:
                ssl_context = ssl.create_default_context(cafile=str(target.ca_bundle))
        config = attrs.evolve(
            config,
            enroll=scenario.enrollment == "enroll",
            timeouts=Timeouts(
                request=scenario.timeouts.request,
                step=scenario.timeouts.step,
                login=scenario.timeouts.flow,
            ),
            retry=scenario.retry,
            lockout=scenario.lockout,
            # Logins queue, first come first served, at the engine's gate (its wait is the
            # ``queue`` step); past it each holds one of at most 100 connections.
            pool=PoolLimits(connections=self.connections, in_flight=self.connections),
        )
        session = make_session(limit=config.pool.connections, ssl=ssl_context)
        stack.push_async_callback(session.close)
        engine = Engine(config=config, session=session, credentials=store, clock=self._clock)
        await stack.enter_async_context(engine)
        return engine

    def _concurrency(self) -> int:
        return self._concurrency_of(self.scenario)

    @staticmethod
    def _concurrency_of(scenario: Scenario) -> int:
        """Flows that may be in flight at once: the VUs, or the open model's bound."""
        load = scenario.load
        assert load is not None
        if isinstance(load, ClosedLoad):
            return load.users
        peak = max([load.rate, *(stage.target for stage in load.stages)])
        return load.max_in_flight or max(100, int(peak * scenario.timeouts.flow))

    # -- load models ----------------------------------------------------------------------

    def _more(self, deadline: float | None) -> bool:
        """Whether another flow may start: not stopped, within duration and iterations."""
        if self._stop.is_set():
            return False
        if deadline is not None and self._now() >= deadline:
            return False
        iterations = self.load.iterations if self.load is not None else None
        return iterations is None or self._issued < iterations

    def _deadline(self) -> float | None:
        duration = self.load.duration if self.load is not None else None
        return None if duration is None else self._now() + duration

    async def _run_closed(self, load: ClosedLoad) -> None:
        deadline = self._deadline()
        tasks = [
            asyncio.create_task(self._virtual_user(i, load, deadline)) for i in range(load.users)
        ]
        await self._wait_for(tasks)

    async def _virtual_user(self, index: int, load: ClosedLoad, deadline: float | None) -> None:
        if load.ramp_up and index and await self._stopped_within(index / load.ramp_up):
            return
        while self._more(deadline):
            user = await self._take_user(deadline)
            if user is None:
                return
            self._issued += 1
            try:
                await self._one_flow(user, self._now())
            finally:
                self._give_back(user)
            think = load.think_time.sample(self._rng)
            if think > 0 and await self._stopped_within(think):
                return

    async def _run_open(self, load: OpenLoad) -> None:
        deadline = self._deadline()
        started = self._now()
        intended = started
        limit = self._concurrency()
        tasks: set[asyncio.Task[None]] = set()
        # The schedule, not the clock, bounds an open run: the last arrival is due before
        # ``duration`` even if the loop runs late.
        while self._more(None) and (deadline is None or intended < deadline):
            rate = load.rate_at(intended - started)
            if rate <= 0:
                intended += 0.1
                if await self._stopped_within(intended - self._now()):
                    break
                continue
            delay = intended - self._now()
            if delay > 0 and await self._stopped_within(delay):
                break
            self._issued += 1
            if self._in_flight >= limit or not self._free:
                self.stats.record_missed_start()
            else:
                user = self._free.popleft()
                task = asyncio.create_task(self._open_flow(user, intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            intended += 1.0 / rate
        await self._wait_for(list(tasks))

    async def _open_flow(self, user: UserSpec, intended: float) -> None:
        try:
            await self._one_flow(user, intended)
        finally:
            self._give_back(user)

    async def _wait_for(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Wait for the tasks; after a stop, give them the grace period, then cancel."""
        if not tasks:
            return
        waiter = asyncio.ensure_future(asyncio.wait(tasks))
        stop = asyncio.ensure_future(self._stop.wait())
        abort = asyncio.ensure_future(self._abort.wait())
        try:
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done() and not self._abort.is_set():
                await asyncio.wait(
                    {waiter, abort}, timeout=self.grace, return_when="FIRST_COMPLETED"
                )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for future in (waiter, stop, abort):
                future.cancel()
            await asyncio.gather(waiter, stop, abort, return_exceptions=True)

    async def _stopped_within(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if a stop came first."""
        if seconds <= 0:
            return self._stop.is_set()
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def _take_user(self, deadline: float | None) -> UserSpec | None:
        """The longest-free user; waits (bounded by the deadline) if all are busy."""
        while not self._free:
            self._user_freed.clear()
            timeout = None if deadline is None else max(deadline - self._now(), 0.0)
            try:
                await asyncio.wait_for(self._user_freed.wait(), timeout=timeout)
            except TimeoutError:
                return None
            if self._stop.is_set():
                return None
        return self._free.popleft()

    def _give_back(self, user: UserSpec) -> None:
        self._free.append(user)
        self._user_freed.set()

    # -- one flow -------------------------------------------------------------------------

    def factor_for(self, user: UserSpec) -> str:
        """The user's factor: its hint, else drawn from the mix, the same on every run."""
        if user.factor_hint:
            return user.factor_hint
        factor = self._factors.get(user.username)
        if factor is None:
            draw = zlib.crc32(f"{self._seed}:{user.username}".encode()) / 2**32
            factor = _weighted(self.scenario.factors.weights, draw)
            self._factors[user.username] = factor
        return factor

    async def _one_flow(self, user: UserSpec, intended: float) -> None:
        engine = self._engine
        assert engine is not None
        stats = self.stats
        stats.record_start()
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            result = await engine.login(
                user.username,
                user.password,
                factor=self.factor_for(user),
                phone=user.phone,
                email=user.email,
            )
        except asyncio.CancelledError:
            stats.record_flow(self._now() - intended, "cancelled")
            raise
        finally:
            self._in_flight -= 1
        self._record(result, self._now() - intended)

    def _record(self, result: LoginResult, latency: float) -> None:
        stats = self.stats
        for record in result.path:
            if record.outcome in RETRY_OUTCOMES:
                # Asked to try again (push pending): a retry, not an error.
                stats.record_step(record.step, record.seconds, "ok")
                stats.record_retry(record.step)
            else:
                stats.record_step(record.step, record.seconds, record.outcome)
        for step in result.retries:
            stats.record_retry(step)
        stats.record_flow(latency, result.outcome, result.error)
        if result.enrolled:
            self._enrolled += 1

    # -- live view and reports ------------------------------------------------------------

    async def _tick(self) -> None:
        live = self.live
        if live is None:
            return
        live.start()
        try:
            while True:
                waiting = self.waiting
                live.update(
                    self.stats.snapshot(series=False), in_flight=self._in_flight, waiting=waiting
                )
                await asyncio.sleep(0.25)
        finally:
            live.update(self.stats.snapshot(series=False), in_flight=self._in_flight, waiting=0)
            live.stop()

    def meta(self, started_at: datetime.datetime, ended_at: datetime.datetime) -> dict[str, Any]:
        """What the report says about the run (never a secret)."""
        scenario = self.scenario
        target = scenario.target
        load = None if self.load is None else {**attrs.asdict(self.load), "model": self.load.model}
        from importlib.metadata import version

        return {
            "scenario": scenario.name,
            "source": scenario.source,
            "description": scenario.description,
            "seed": self._seed,
            "started_at": started_at.isoformat(),
            "ended_at": ended_at.isoformat(),
            "target": (
                {"embedded_emulator": True, "base_url": self._engine_url()}
                if target is None
                else {
                    "embedded_emulator": False,
                    "base_url": target.base_url,
                    "client_id": target.client_id,
                    "audience": target.audience,
                    "scope": target.scope,
                }
            ),
            "load": load,
            "users": scenario.users.count,
            # A list, not {factor: weight}: "otp" is also a secret field name, which the
            # reports' masking would hide.
            "factors": [
                {"factor": name, "weight": weight} for name, weight in scenario.factors.weights
            ],
            "enrollment": scenario.enrollment,
            "journeys": [journey.name for journey in scenario.journeys],
            "enrolled_in_run": self._enrolled,
            "credentials": scenario.credentials,
            "interrupted": self._interrupted,
            "flowengine": version("flowengine"),
            "python": platform.python_version(),
        }

    def _engine_url(self) -> str:
        return self._engine.config.base_url if self._engine is not None else ""

    def _finish(self, started_at: datetime.datetime) -> RunResult:
        snapshot = self.stats.snapshot()
        thresholds = tuple(
            evaluate(
                parse_thresholds(self.scenario.thresholds, source=self.scenario.source),
                snapshot,
            )
        )
        meta = self.meta(started_at, datetime.datetime.now(datetime.UTC))
        journeys = self.journeys.result() if self.journeys is not None else None
        reports: dict[str, Path] = {}
        if self.report_dir is not None:
            reports = write_reports(
                self.report_dir,
                snapshot,
                meta,
                thresholds=thresholds,
                journeys=journeys.to_dict() if journeys is not None else None,
            )
        if self._interrupted:
            code = ExitCode.INTERRUPTED
        elif journeys is not None and not journeys.passed:
            code = ExitCode.EXPECTATIONS_FAILED
        elif not all(result.passed for result in thresholds):
            code = ExitCode.THRESHOLDS_FAILED
        else:
            code = ExitCode.OK
        return RunResult(
            snapshot=snapshot,
            thresholds=thresholds,
            reports=reports,
            exit_code=code,
            interrupted=self._interrupted,
            meta=meta,
            journeys=journeys,
        )


def _forget_future_otp_steps(store: CredentialStore, clock: OffsetClock) -> None:
    """After the clock was moved forward, no stored TOTP step may be ahead of real time
    (the next run's emulator starts at real time; the engine would wait for that step)."""
    now = int((clock.time() - clock.offset) // TOTP_PERIOD)
    for record in list(store.all()):
        if record.last_otp_step is not None and record.last_otp_step > now:
            store.put(attrs.evolve(record, last_otp_step=now))


def _weighted(weights: tuple[tuple[str, float], ...], draw: float) -> str:
    """The factor at cumulative share ``draw`` (0 <= draw < 1)."""
    total = sum(weight for _, weight in weights)
    point = draw * total
    for name, weight in weights:
        if weight <= 0:
            continue
        point -= weight
        if point < 0:
            return name
    return next(name for name, weight in reversed(weights) if weight > 0)
