"""Splitting a scenario into shards: disjoint users, and the load divided between them.

Each shard is a whole :class:`~flowengine.spec.Scenario` that one :class:`~flowengine.runner.Runner`
runs: its users are one part of ``UserSource.partition(n)``; closed-model virtual users,
ramp-up and iterations are divided; an open model's arrival rate, stages and
``max_in_flight`` are divided. Integer quantities are split so that they add up exactly
(sizes differ by at most one), rates so that they add up to the whole. The seed is kept, so
every user gets the factor it would get in a single-process run. A scenario without
``target`` gives each shard its own embedded emulator serving that shard's users only.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from flowengine.errors import ConfigError
from flowengine.spec import ClosedLoad, CsvUsers, OpenLoad, Scenario, Stage

__all__ = ["absolute_store", "split_counts", "split_scenario"]


def split_counts(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` integers that differ by at most one and add up."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    size, extra = divmod(total, parts)
    return [size + (1 if index < extra else 0) for index in range(parts)]


def absolute_store(spec: str, base: Path | None = None) -> str:
    """The credential store spec with a relative SQLite path made absolute (against ``base``).

    Shards run in other processes (other working directories): they must name one file.
    """
    if spec in ("", "memory", "memory://"):
        return spec
    prefixed = spec.startswith("sqlite:///")
    raw = spec.removeprefix("sqlite:///") if prefixed else spec
    if "://" in raw or not raw:
        return spec  # open_store reports it
    path = Path(raw)
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return f"sqlite:///{path}"


def _check(scenario: Scenario, workers: int) -> None:
    where = scenario.source
    if workers < 1:
        raise ConfigError(f"needs at least 1 worker, got {workers}", path="--workers")
    if scenario.load is None:
        raise ConfigError("has no load section to shard", source=where, path="load")
    if scenario.journeys:
        raise ConfigError(
            "journeys run in one process; run them without --workers", source=where, path="journeys"
        )
    users = scenario.users.count
    if users < workers:
        raise ConfigError(
            f"{users} user(s) cannot be split between {workers} workers (each needs its own)",
            source=where,
            path="users",
        )
    load = scenario.load
    if load.iterations is not None and load.iterations < workers:
        raise ConfigError(
            f"{load.iterations} iteration(s) cannot be split between {workers} workers",
            source=where,
            path="load.iterations",
        )
    if isinstance(load, ClosedLoad) and load.users < workers:
        raise ConfigError(
            f"{load.users} virtual user(s) cannot be split between {workers} workers",
            source=where,
            path="load.users",
        )
    bound = load.max_in_flight if isinstance(load, OpenLoad) else None
    if bound is not None and bound < workers:
        raise ConfigError(
            f"max_in_flight {bound} cannot be split between {workers} workers",
            source=where,
            path="load.max_in_flight",
        )


def split_scenario(scenario: Scenario, workers: int) -> list[Scenario]:
    """``workers`` shard scenarios that together make ``scenario`` (ConfigError if they cannot).

    Paths (the credential store, a users CSV, a CA bundle) are made absolute, so that every
    shard names the same files wherever it runs.
    """
    _check(scenario, workers)
    load = scenario.load
    assert load is not None
    iterations = (
        [None] * workers if load.iterations is None else split_counts(load.iterations, workers)
    )
    if isinstance(load, ClosedLoad):
        vus = split_counts(load.users, workers)
        ramp = None if load.ramp_up is None else load.ramp_up / workers
        loads: list[ClosedLoad | OpenLoad] = [
            attrs.evolve(load, users=vus[i], ramp_up=ramp, iterations=iterations[i])
            for i in range(workers)
        ]
    else:
        stages = tuple(
            Stage(duration=stage.duration, target=stage.target / workers) for stage in load.stages
        )
        bounds = (
            [None] * workers
            if load.max_in_flight is None
            else split_counts(load.max_in_flight, workers)
        )
        loads = [
            attrs.evolve(
                load,
                rate=load.rate / workers,
                stages=stages,
                max_in_flight=bounds[i],
                iterations=iterations[i],
            )
            for i in range(workers)
        ]
    scenario = _absolute_paths(scenario)
    return [
        attrs.evolve(scenario, users=users, load=shard_load)
        for users, shard_load in zip(scenario.users.partition(workers), loads, strict=True)
    ]


def _absolute_paths(scenario: Scenario) -> Scenario:
    """The scenario with every file it names as an absolute path (shards run elsewhere)."""
    users = scenario.users
    if isinstance(users, CsvUsers):
        users = attrs.evolve(users, path=users.path.absolute())
    target = scenario.target
    if target is not None and target.ca_bundle is not None:
        target = attrs.evolve(target, ca_bundle=target.ca_bundle.absolute())
    return attrs.evolve(
        scenario,
        base_dir=scenario.base_dir.absolute(),
        users=users,
        target=target,
        credentials=absolute_store(scenario.credentials),
    )
