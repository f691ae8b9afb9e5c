"""Running a scenario's journeys: every user of every group through its steps, at once.

The users of a group start in an order shuffled by the run's seed (the same seed, the same
order and the same wrong codes); each goes through the steps in order and stops at the
first step whose expectation fails (the rest are *skipped*). :meth:`JourneyRunner.result`
can be read at any time, also after a stop or a cancellation (partial results).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import attrs
import structlog

from flowengine.engine import Engine
from flowengine.factors import CodeSource, EmulatorInbox
from flowengine.journeys.actions import StepActions
from flowengine.journeys.control import EmulatorControl
from flowengine.journeys.mfa import MFA_API_SCOPE
from flowengine.journeys.observe import JourneyUser, Stopped
from flowengine.journeys.results import (
    JourneyResult,
    JourneysResult,
    Observed,
    Status,
    StepResult,
    UserResult,
    check,
    columns,
    describe_expectation,
)
from flowengine.spec import Journey, Repeat, Step

__all__ = ["JourneyRunner", "mfa_api_engine", "seeded_users", "sibling_engine"]


_PUSH_ANSWERS = {"never": "ignore"}
"""The scenario's push modes as journey push answers."""


def seeded_users(journey: Journey, seed: int) -> list[JourneyUser]:
    """The group's users in the order they start in, each with its own random source: both
    drawn from ``seed`` (the same seed, the same order and the same wrong codes)."""
    users = list(journey.users.iter_users())
    random.Random(f"{seed}:{journey.name}").shuffle(users)
    return [
        JourneyUser(spec=u, rng=random.Random(f"{seed}:{journey.name}:{u.username}")) for u in users
    ]


def sibling_engine(engine: Engine, code_source: CodeSource | None = None, **changes: Any) -> Engine:
    """An engine with other settings over ``engine``'s pool, store, clock and ledger.

    It shares the engine's record of the TOTP steps used (codes are single use), so the
    two never submit the same code.
    """
    sibling = Engine(
        config=attrs.evolve(engine.config, **changes),
        session=engine.session,
        credentials=engine.credentials,
        clock=engine.clock,
        code_source=code_source,
    )
    sibling.otp_counters = engine.otp_counters  # one account of used TOTP steps per user
    sibling.ledger = engine.ledger
    return sibling


def mfa_api_engine(engine: Engine, code_source: CodeSource | None = None) -> Engine:
    """The engine that gets MFA-API access tokens: audience ``https://{domain}/mfa/``,
    scope :data:`~flowengine.journeys.mfa.MFA_API_SCOPE`, logging in with an enrolled
    factor only (it never enrolls)."""
    return sibling_engine(
        engine,
        code_source,
        audience=f"{engine.config.base_url}/mfa/",
        scope=MFA_API_SCOPE,
        enroll=False,
    )


@attrs.define
class _Tally:
    """One (user, step) while the journey runs."""

    step: Step
    runs: int = 0
    seconds: float | None = None
    actual: str | None = None
    failed: bool = False
    iteration: str | None = None
    message: str | None = None
    reply: object = None

    def result(self) -> StepResult:
        step = self.step
        status: Status = "fail" if self.failed else "skipped"
        if not self.failed and self.runs:
            done = self.runs >= step.times if isinstance(step, Repeat) else True
            status = "pass" if done else "skipped"
        return StepResult(
            path=step.path,
            label=step.label,
            kind=step.kind,
            status=status,
            runs=self.runs,
            seconds=self.seconds,
            expected=None if isinstance(step, Repeat) else describe_expectation(step.expect),
            actual=self.actual,
            iteration=self.iteration,
            message=self.message,
            reply=self.reply,
        )


@attrs.define
class _UserRun:
    journey: Journey
    user: JourneyUser
    tallies: dict[str, _Tally]
    started: bool = False
    failed: bool = False

    def result(self) -> UserResult:
        steps = tuple(tally.result() for tally in self.tallies.values())
        top = [s for s in steps if s.path in {step.path for step in self.journey.steps}]
        status: Status = "skipped"
        if self.failed:
            status = "fail"
        elif self.started and all(s.status == "pass" for s in top):
            status = "pass"
        return UserResult(
            journey=self.journey.name, username=self.user.spec.username, status=status, steps=steps
        )


class JourneyRunner:
    """Runs journeys over an engine (and its session, store and clock).

    ``push`` is how pushes are answered until a ``push`` step says otherwise (the scenario's
    ``push.mode``); ``notify`` tells the person running the journeys what to do by hand.
    """

    def __init__(
        self,
        journeys: tuple[Journey, ...],
        *,
        engine: Engine,
        seed: int = 0,
        control: EmulatorControl | None = None,
        code_source: CodeSource | None = None,
        step_timeout: float = 60.0,
        push: str = "approve",
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.journeys = journeys
        self.engine = engine
        self.seed = seed
        self._control = control
        self._code_source = code_source
        self._step_timeout = step_timeout
        self._notify = notify
        self._push = _PUSH_ANSWERS.get(push, push)
        self._stop = asyncio.Event()
        self._runs: dict[str, list[_UserRun]] = {}
        self._orders: dict[str, tuple[str, ...]] = {}
        self._log = structlog.get_logger("flowengine.journeys")

    def stop(self) -> None:
        """Start no new step; the steps in flight finish (a ``wait`` ends at once)."""
        self._stop.set()

    def usernames(self) -> set[str]:
        """Every user of every group (lower case), to keep them out of a load."""
        return {u.username.lower() for j in self.journeys for u in j.users.iter_users()}

    async def run(self) -> JourneysResult:
        """Run every journey to its end (or a stop); the results."""
        engine = self.engine
        control = self._control or EmulatorControl(
            engine.session, engine.config.base_url, timeout=engine.config.timeouts.request
        )
        code_source = self._code_source or EmulatorInbox(engine.session, engine.config.base_url)
        tasks: list[asyncio.Task[None]] = []
        async with (
            mfa_api_engine(engine, code_source) as mfa_engine,
            sibling_engine(engine, code_source, enroll=False) as no_enroll,
        ):
            actions = StepActions(
                engine=engine,
                mfa_engine=mfa_engine,
                no_enroll_engine=no_enroll,
                control=control,
                code_source=code_source,
                otp_counters=engine.otp_counters,
                stop=self._stop,
                step_timeout=self._step_timeout,
                notify=self._notify,
            )
            for journey in self.journeys:
                users = seeded_users(journey, self.seed)
                for user in users:
                    user.push = self._push
                self._orders[journey.name] = tuple(u.spec.username for u in users)
                runs = self._runs[journey.name] = []
                for user in users:
                    tallies = {s.path: _Tally(step=s) for s in _all_steps(journey.steps)}
                    run = _UserRun(journey, user, tallies)
                    runs.append(run)
                    tasks.append(asyncio.create_task(self._run_user(actions, run)))
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return self.result()

    def result(self) -> JourneysResult:
        """The results so far (users not started, or stopped, show skipped steps)."""
        journeys = []
        for journey in self.journeys:
            runs = self._runs.get(journey.name, [])
            journeys.append(
                JourneyResult(
                    name=journey.name,
                    description=journey.description,
                    path=journey.path,
                    order=self._orders.get(journey.name, ()),
                    columns=columns(journey.steps),
                    users=tuple(run.result() for run in runs),
                )
            )
        return JourneysResult(seed=self.seed, journeys=tuple(journeys))

    async def _run_user(self, actions: StepActions, run: _UserRun) -> None:
        structlog.contextvars.bind_contextvars(
            journey=run.journey.name, user=run.user.spec.username
        )
        run.started = True
        await self._steps(actions, run, run.journey.steps, ())

    async def _steps(
        self,
        actions: StepActions,
        run: _UserRun,
        steps: tuple[Step, ...],
        iteration: tuple[tuple[int, int], ...],
    ) -> bool:
        """Run ``steps`` in order; False at the first failure (or a stop)."""
        for step in steps:
            if self._stop.is_set():
                return False
            tally = run.tallies[step.path]
            if isinstance(step, Repeat):
                for index in range(step.times):
                    inner = (*iteration, (index + 1, step.times))
                    if not await self._steps(actions, run, step.steps, inner):
                        tally.failed = run.failed
                        tally.iteration = f"{index + 1}/{step.times}" if run.failed else None
                        return False
                    tally.runs += 1
                continue
            try:
                observed = await actions.run(step, run.user)
            except Stopped:
                return False
            tally.runs += 1
            tally.seconds = max(tally.seconds or 0.0, observed.seconds)
            tally.actual = observed.describe(step.expect)
            if not check(step.expect, observed):
                self._fail(run, tally, observed, iteration)
                return False
        return True

    def _fail(
        self,
        run: _UserRun,
        tally: _Tally,
        observed: Observed,
        iteration: tuple[tuple[int, int], ...],
    ) -> None:
        step = tally.step
        where = " > ".join(f"{i}/{n}" for i, n in iteration) or None
        tally.failed = run.failed = True
        tally.iteration = where
        tally.reply = observed.reply
        context = f" (iteration {where})" if where else ""
        tally.message = (
            f"journey {run.journey.name!r}, user {run.user.spec.username}: step {step.path}"
            f" ({step.label}){context}: expected {describe_expectation(step.expect)};"
            f" got {observed.describe(step.expect)}"
        )
        self._log.info("journey.step_failed", step=step.path, message=tally.message)


def _all_steps(steps: tuple[Step, ...]) -> list[Step]:
    """Every step in column order (nested ones after their ``repeat``)."""
    found: list[Step] = []
    for step in steps:
        found.append(step)
        if isinstance(step, Repeat):
            found.extend(_all_steps(step.steps))
    return found
