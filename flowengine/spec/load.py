"""The load model of a scenario: closed (virtual users looping) or open (arrivals at a rate)."""

from __future__ import annotations

import random
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

from flowengine.spec._read import Reader, describe, key_path
from flowengine.spec.units import parse_duration

__all__ = ["ClosedLoad", "LoadSpec", "OpenLoad", "Stage", "ThinkTime", "parse_load"]


@attrs.frozen(kw_only=True)
class ThinkTime:
    """A pause between two flows of a virtual user, uniform in ``[low, high]`` seconds."""

    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """One pause, in seconds."""
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)


@attrs.frozen(kw_only=True)
class ClosedLoad:
    """``users`` virtual users, each running flows one after another."""

    model: ClassVar[Literal["closed"]] = "closed"
    users: int
    """Virtual users (each logs in its own users, so at most the population's count)."""
    ramp_up: float | None = None
    """Virtual users started per second; None: all at once."""
    duration: float | None = None
    """Stop starting flows after this many seconds."""
    iterations: int | None = None
    """Stop after this many flows in total."""
    think_time: ThinkTime = ThinkTime()


@attrs.frozen(kw_only=True)
class Stage:
    """Over ``duration`` seconds, move the arrival rate linearly to ``target`` per second."""

    duration: float
    target: float


@attrs.frozen(kw_only=True)
class OpenLoad:
    """Flows start at a rate, whether or not earlier ones finished (latency from intended start)."""

    model: ClassVar[Literal["open"]] = "open"
    rate: float
    """Flows per second: constant without stages, else the first stage's starting rate."""
    stages: tuple[Stage, ...] = ()
    max_in_flight: int | None = None
    """Flows running at once beyond which a start is counted as missed; None: the runner's."""
    duration: float | None = None
    """Seconds; with stages, their total."""
    iterations: int | None = None
    """Stop after this many flows in total."""

    def rate_at(self, elapsed: float) -> float:
        """The arrival rate (per second) ``elapsed`` seconds into the run."""
        rate, start = self.rate, 0.0
        for stage in self.stages:
            if elapsed < start + stage.duration:
                return rate + (stage.target - rate) * (elapsed - start) / stage.duration
            rate, start = stage.target, start + stage.duration
        return rate


LoadSpec: TypeAlias = ClosedLoad | OpenLoad

_COMMON = ("duration", "iterations", "model")
_CLOSED = ("ramp_up", "think_time", "users")
_OPEN = ("max_in_flight", "rate", "stages")


def _think_time(r: Reader, value: Any, path: str) -> ThinkTime:
    what = "a duration or a range like 0.5s..2s"
    text = r.expand(value, path) if isinstance(value, str) else value
    if isinstance(text, str) and ".." in text:
        low_text, _, high_text = text.partition("..")
        try:
            low, high = parse_duration(low_text), parse_duration(high_text)
        except ValueError:
            raise r.error(path, f"expected {what}, got {describe(value)}") from None
        if low > high:
            raise r.error(path, f"the range's low end is above its high end, got {describe(value)}")
        return ThinkTime(low=low, high=high)
    seconds = r.duration(value, path, what=what, positive=False)
    return ThinkTime(low=seconds, high=seconds)


def _stages(r: Reader, value: Any, path: str) -> tuple[Stage, ...]:
    items = r.items(value, path, what="a list of stages ({duration, target})")
    if not items:
        raise r.error(path, "expected at least one stage, got an empty list")
    stages = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        data = r.mapping(item, where, what="a stage: a mapping with duration and target")
        r.check_keys(data, where, ("duration", "target"), required=("duration", "target"))
        stages.append(
            Stage(
                duration=r.duration(
                    data["duration"], key_path(where, "duration"), what="a positive duration"
                ),
                target=r.rate(
                    data["target"],
                    key_path(where, "target"),
                    what="a number of flows per second (0 or more)",
                    positive=False,
                ),
            )
        )
    return tuple(stages)


def parse_load(r: Reader, value: Any, path: str) -> LoadSpec:
    """The ``load:`` mapping."""
    data = r.mapping(value, path, what="a mapping (model, users or rate, duration...)")
    r.check_keys(data, path, (*_COMMON, *_CLOSED, *_OPEN))
    if "model" in data:
        model = r.choice(
            data["model"], key_path(path, "model"), ("closed", "open"), what="load model"
        )
    else:
        model = "open" if any(key in data for key in _OPEN) else "closed"
    wrong = _OPEN if model == "closed" else _CLOSED
    for key in wrong:
        if key in data:
            other = "open" if model == "closed" else "closed"
            raise r.error(
                key_path(path, key), f"belongs to the {other} model, and this load is {model}"
            )
    duration = iterations = None
    if data.get("duration") is not None:
        duration = r.duration(
            data["duration"], key_path(path, "duration"), what="a positive duration"
        )
    if data.get("iterations") is not None:
        iterations = r.integer(
            data["iterations"],
            key_path(path, "iterations"),
            what="a positive number of flows",
            minimum=1,
            maximum=10**12,
        )
    if model == "closed":
        return _closed(r, data, path, duration, iterations)
    return _open(r, data, path, duration, iterations)


def _closed(
    r: Reader, data: dict[str, Any], path: str, duration: float | None, iterations: int | None
) -> ClosedLoad:
    if "users" not in data:
        raise r.error(path, "missing required key 'users' (the number of virtual users)")
    users = r.integer(
        data["users"],
        key_path(path, "users"),
        what="a positive number of virtual users",
        minimum=1,
        maximum=10_000_000,
    )
    ramp_up = None
    if data.get("ramp_up") is not None:
        ramp_up = r.rate(
            data["ramp_up"],
            key_path(path, "ramp_up"),
            what="a positive number of virtual users per second",
        )
    think = ThinkTime()
    if data.get("think_time") is not None:
        think = _think_time(r, data["think_time"], key_path(path, "think_time"))
    if duration is None and iterations is None:
        raise r.error(path, "give duration, iterations or both, so that the run ends")
    return ClosedLoad(
        users=users, ramp_up=ramp_up, duration=duration, iterations=iterations, think_time=think
    )


def _open(
    r: Reader, data: dict[str, Any], path: str, duration: float | None, iterations: int | None
) -> OpenLoad:
    stages: tuple[Stage, ...] = ()
    if "stages" in data:
        stages = _stages(r, data["stages"], key_path(path, "stages"))
        if duration is not None:
            raise r.error(
                key_path(path, "duration"), "the stages set the duration; remove duration"
            )
        duration = sum(stage.duration for stage in stages)
    if "rate" in data:
        rate = r.rate(
            data["rate"],
            key_path(path, "rate"),
            positive=not stages,
            what="a positive number of flows per second"
            if not stages
            else "a number of flows per second (0 or more)",
        )
    elif stages:
        rate = 0.0
    else:
        raise r.error(path, "missing 'rate' or 'stages' (how fast flows start)")
    if stages and rate == 0 and all(stage.target == 0 for stage in stages):
        raise r.error(key_path(path, "stages"), "the rate never rises above zero")
    max_in_flight = None
    if data.get("max_in_flight") is not None:
        max_in_flight = r.integer(
            data["max_in_flight"],
            key_path(path, "max_in_flight"),
            what="a positive number of flows",
            minimum=1,
            maximum=10_000_000,
        )
    if duration is None and iterations is None:
        raise r.error(
            path, "give duration, iterations, stages, or a combination, so that the run ends"
        )
    return OpenLoad(
        rate=rate,
        stages=stages,
        max_in_flight=max_in_flight,
        duration=duration,
        iterations=iterations,
    )
