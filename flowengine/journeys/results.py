"""What a journey step observed, whether that met its expectation, and the results.

One run of a step ends in an :class:`Observed` (outcome, error, counts, latency and the
reply, secrets masked). :func:`check` compares it with the step's
:class:`~flowengine.spec.Expectation`; the results roll up into :class:`StepResult` per
(user, step), :class:`UserResult`, :class:`JourneyResult` and :class:`JourneysResult`, whose
:meth:`~JourneysResult.to_dict` is the journey part of the reports.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from flowengine.spec import Expectation, Repeat, Step
from flowengine.spec.steps import Outcome

__all__ = [
    "Column",
    "JourneyResult",
    "JourneysResult",
    "Observed",
    "Status",
    "StepResult",
    "UserResult",
    "check",
    "columns",
    "describe_expectation",
]

Status: TypeAlias = Literal["pass", "fail", "skipped"]


@attrs.frozen(kw_only=True)
class Observed:
    """How one run of a step ended."""

    outcome: Outcome
    error: str | None = None
    """Auth0's error code (``invalid_grant``), or flowengine's name when no reply said."""
    aliases: tuple[str, ...] = ()
    """Other names the error goes by (the engine's kind, e.g. ``invalid_code``)."""
    description: str | None = None
    status: int | None = None
    """The HTTP status of the reply, when there was one."""
    authenticators: int | None = None
    """``list_authenticators``: what the user enrolled (see :func:`count_enrolled`)."""
    recovery_code: Literal["issued", "unchanged"] | None = None
    seconds: float = 0.0
    reply: Any = None
    """The reply (or the login's summary), JSON-safe, secrets masked."""

    def errors(self) -> frozenset[str]:
        """Every name an ``error:`` expectation may use for this error."""
        return frozenset(n for n in (self.error, *self.aliases) if n)

    def describe(self, expect: Expectation | None = None) -> str:
        """``outcome failed, error invalid_grant (Invalid otp_code.), 2 authenticators, 12 ms``
        (the recovery code only when ``expect`` checks it)."""
        parts = [f"outcome {self.outcome}"]
        if self.error:
            error = f"error {self.error}"
            if self.description:
                error += f" ({self.description})"
            parts.append(error)
        if self.authenticators is not None:
            parts.append(f"authenticators {self.authenticators}")
        if self.recovery_code is not None and expect is not None and expect.recovery_code:
            parts.append(f"recovery_code {self.recovery_code}")
        parts.append(f"{self.seconds * 1000:.0f} ms")
        return ", ".join(parts)


def describe_expectation(expect: Expectation | None) -> str:
    """``outcome locked, error too_many_attempts, latency < 2s`` (no expectation: success)."""
    if expect is None:
        return "outcome success"
    parts = [f"outcome {expect.outcome}"]
    if expect.error is not None:
        parts.append(f"error {expect.error}")
    if expect.authenticators is not None:
        parts.append(f"authenticators {expect.authenticators}")
    if expect.recovery_code is not None:
        parts.append(f"recovery_code {expect.recovery_code}")
    if expect.latency is not None:
        parts.append(f"latency {expect.latency}")
    return ", ".join(parts)


def check(expect: Expectation | None, observed: Observed) -> bool:
    """Whether ``observed`` meets ``expect`` (None: the step must succeed)."""
    if expect is None:
        return observed.outcome == "success"
    if observed.outcome != expect.outcome:
        return False
    if expect.error is not None and expect.error not in observed.errors():
        return False
    if expect.authenticators is not None and observed.authenticators != expect.authenticators:
        return False
    if expect.recovery_code is not None and observed.recovery_code != expect.recovery_code:
        return False
    return expect.latency is None or expect.latency.holds(observed.seconds)


@attrs.frozen(kw_only=True)
class Column:
    """One step of a journey as a column of its table (``repeat`` blocks flattened)."""

    path: str
    label: str
    kind: str
    depth: int
    """How many ``repeat`` blocks the step is inside."""


def columns(steps: tuple[Step, ...], depth: int = 0) -> tuple[Column, ...]:
    """The steps in file order, nested ones after their ``repeat``."""
    found: list[Column] = []
    for step in steps:
        found.append(Column(path=step.path, label=step.label, kind=step.kind, depth=depth))
        if isinstance(step, Repeat):
            found.extend(columns(step.steps, depth + 1))
    return tuple(found)


@attrs.frozen(kw_only=True)
class StepResult:
    """One step of one user: every run of it (``repeat``), and the one that failed."""

    path: str
    label: str
    kind: str
    status: Status
    runs: int = 0
    seconds: float | None = None
    """The longest run."""
    expected: str | None = None
    actual: str | None = None
    """The failing run, else the last one."""
    iteration: str | None = None
    """Inside ``repeat``: which iteration failed, e.g. ``2/3``."""
    message: str | None = None
    reply: Any = None
    """The reply that broke the expectation (secrets masked)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "path": self.path,
            "label": self.label,
            "kind": self.kind,
            "status": self.status,
            "runs": self.runs,
            "seconds": None if self.seconds is None else round(self.seconds, 6),
            "expected": self.expected,
            "actual": self.actual,
            "iteration": self.iteration,
            "message": self.message,
            "reply": self.reply,
        }


@attrs.frozen(kw_only=True)
class UserResult:
    """One user's way through a journey."""

    journey: str
    username: str
    status: Status
    """``fail`` at the first failed step (the rest is skipped); ``skipped`` if it never ran."""
    steps: tuple[StepResult, ...]

    @property
    def failure(self) -> StepResult | None:
        """The step that failed, if one did."""
        return next((s for s in self.steps if s.status == "fail" and s.message), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        failure = self.failure
        return {
            "user": self.username,
            "status": self.status,
            "message": failure.message if failure else None,
            "steps": [step.to_dict() for step in self.steps],
        }


@attrs.frozen(kw_only=True)
class JourneyResult:
    """A journey: its columns and every user's row."""

    name: str
    description: str
    path: str
    order: tuple[str, ...]
    """The users in the order they started (seeded)."""
    columns: tuple[Column, ...]
    users: tuple[UserResult, ...]

    @property
    def passed(self) -> bool:
        """Every user passed every step."""
        return all(user.status == "pass" for user in self.users)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "name": self.name,
            "description": self.description,
            "path": self.path,
            "passed": self.passed,
            "order": list(self.order),
            "steps": [attrs.asdict(column) for column in self.columns],
            "users": [user.to_dict() for user in self.users],
        }


@attrs.frozen(kw_only=True)
class JourneysResult:
    """Every journey of a run, and the seed that ordered them."""

    seed: int
    journeys: tuple[JourneyResult, ...]

    @property
    def passed(self) -> bool:
        """Every expectation held (and every user ran)."""
        return all(journey.passed for journey in self.journeys)

    def failures(self) -> list[tuple[UserResult, StepResult]]:
        """(user, failed step) pairs, journey by journey."""
        found = []
        for journey in self.journeys:
            for user in journey.users:
                failure = user.failure
                if failure is not None:
                    found.append((user, failure))
        return found

    def counts(self) -> dict[str, int]:
        """Users in all, and how many passed, failed and were skipped."""
        users = [user for journey in self.journeys for user in journey.users]
        return {
            "users": len(users),
            "users_passed": sum(user.status == "pass" for user in users),
            "users_failed": sum(user.status == "fail" for user in users),
            "users_skipped": sum(user.status == "skipped" for user in users),
        }

    def to_dict(self) -> dict[str, Any]:
        """The journey part of the reports (JSON-safe, secrets already masked)."""
        return {
            "seed": self.seed,
            "passed": self.passed,
            **self.counts(),
            "failures": [
                {
                    "journey": user.journey,
                    "user": user.username,
                    "step": step.path,
                    "label": step.label,
                    "iteration": step.iteration,
                    "expected": step.expected,
                    "actual": step.actual,
                    "message": step.message,
                    "reply": step.reply,
                }
                for user, step in self.failures()
            ],
            "journeys": [journey.to_dict() for journey in self.journeys],
        }
