"""A scenario file: what to log in to, who, with which factors, how hard, and what must hold.

:func:`load_scenario` reads a YAML file; :func:`parse_scenario` checks already-loaded data.
Either returns a :class:`Scenario` or raises one :class:`ScenarioError` naming the file,
the key path and what was expected. The format is documented in ``docs/scenarios.md``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import attrs

from flowengine.errors import ScenarioError
from flowengine.lockout import LockoutPolicy
from flowengine.retry import RetryPolicy
from flowengine.spec._read import Reader, describe, item_path, key_path, one_of
from flowengine.spec._yaml import read_yaml
from flowengine.spec.hooks import check_emulator_settings, check_threshold, known_factors
from flowengine.spec.journeys import Journey, parse_journeys
from flowengine.spec.load import ClosedLoad, LoadSpec, parse_load
from flowengine.spec.population import parse_users
from flowengine.spec.target import Target, parse_target
from flowengine.spec.users import ListedUsers, PatternUsers, UserSource

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DEFAULT_POPULATION",
    "FactorMix",
    "PushPolicy",
    "Scenario",
    "Target",
    "TimeoutSpec",
    "load_scenario",
    "parse_scenario",
]

DEFAULT_CREDENTIALS = "sqlite:///.flowengine/credentials.db"
"""Where credentials are kept when the scenario does not say (relative to the CWD)."""

DEFAULT_POPULATION = PatternUsers(
    pattern="user{n}@example.test", password="Passw0rd!{n}", count=10_000, phone="+1555{n:07d}"
)
"""The embedded emulator's generated users, used when a scenario without target has no users."""

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Scenario files larger than this are refused."""

_TOP_KEYS = (
    "credentials",
    "description",
    "emulator",
    "enrollment",
    "factors",
    "journeys",
    "load",
    "lockout",
    "name",
    "push",
    "retry",
    "seed",
    "target",
    "thresholds",
    "timeouts",
    "users",
)
_PushMode: TypeAlias = Literal["approve", "reject", "never", "manual"]
_PUSH_MODES: tuple[_PushMode, ...] = ("approve", "manual", "never", "reject")
_ENROLLMENT: tuple[Literal["enroll", "require-enrolled"], ...] = ("enroll", "require-enrolled")


@attrs.frozen(kw_only=True)
class FactorMix:
    """Which factor each flow uses: weights per factor name."""

    weights: tuple[tuple[str, float], ...]
    """(factor, weight) pairs; weights are relative, zero means never."""

    @property
    def names(self) -> tuple[str, ...]:
        """The factors with a positive weight."""
        return tuple(name for name, weight in self.weights if weight > 0)

    def share(self, factor: str) -> float:
        """The fraction of flows that use ``factor``."""
        total = sum(weight for _, weight in self.weights)
        return sum(weight for name, weight in self.weights if name == factor) / total

    def choose(self, rng: random.Random) -> str:
        """One factor, drawn by weight."""
        names = [name for name, _ in self.weights]
        return rng.choices(names, weights=[weight for _, weight in self.weights])[0]


@attrs.frozen(kw_only=True)
class PushPolicy:
    """How push notifications are answered on the emulator."""

    mode: _PushMode
    """``manual``: by hand on a phone (or through the control API by someone else)."""
    after: float = 0.0
    """Seconds between the push and its automatic answer (approve and reject)."""


@attrs.frozen(kw_only=True)
class TimeoutSpec:
    """How long things may take, in seconds."""

    request: float = 10.0
    """One HTTP request."""
    step: float | None = None
    """One step of a flow (a grant, a push wait); None: bounded by the flow only."""
    flow: float = 60.0
    """One whole flow, from the password grant to the tokens."""


@attrs.frozen(kw_only=True)
class Scenario:
    """A validated scenario file."""

    source: str
    """The file as named by the user (for messages and reports)."""
    base_dir: Path
    """The file's directory: relative paths inside it resolve against it."""
    name: str
    description: str = ""
    target: Target | None = None
    """None: the embedded emulator, started in-process by the runner."""
    users: UserSource
    """Who logs in (an empty list when only journeys with their own users run)."""
    factors: FactorMix
    enrollment: Literal["enroll", "require-enrolled"] = "enroll"
    """``enroll``: enroll the chosen factor on first login; ``require-enrolled``: fail instead."""
    push: PushPolicy
    load: LoadSpec | None = None
    """None: only the journeys run."""
    timeouts: TimeoutSpec = TimeoutSpec()
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    """How transient failures are retried (flowengine.retry)."""
    lockout: LockoutPolicy = attrs.field(factory=LockoutPolicy)
    """The share of each user's failed-code bucket a run may spend (flowengine.lockout)."""
    thresholds: tuple[str, ...] = ()
    """k6-style conditions such as ``p95(flow) < 800ms``, parsed by flowengine.thresholds."""
    credentials: str = DEFAULT_CREDENTIALS
    """``memory`` or ``sqlite:///path``, for ``flowengine.credstore.open_store``."""
    seed: int | None = None
    emulator_settings: dict[str, Any] = attrs.field(factory=dict, repr=False)
    """Overrides of the embedded emulator's tenant settings (checked by the emulator)."""
    emulator_faults: dict[str, Any] = attrs.field(factory=dict, repr=False)
    """Faults the embedded emulator injects (its tenant file's ``faults`` section)."""
    journeys: tuple[Journey, ...] = ()

    @property
    def uses_emulator(self) -> bool:
        """Whether the runner starts the embedded emulator."""
        return self.target is None


def _factors(r: Reader, value: Any, path: str) -> FactorMix:
    known = known_factors()
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if not value:
            raise r.error(
                path, f"expected at least one factor ({one_of(known)}), got an empty list"
            )
        names = [
            r.choice(item, item_path(path, index), known, what="factor")
            for index, item in enumerate(value)
        ]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise r.error(item_path(path, index), f"{name} is listed twice")
        return FactorMix(weights=tuple((name, 1.0) for name in names))
    data = r.mapping(
        value, path, what="a mapping of factor weights, a list of factors or one factor"
    )
    if not data:
        raise r.error(path, f"expected at least one factor ({one_of(known)}), got an empty mapping")
    r.check_keys(data, path, known)
    weights = tuple(
        (
            name,
            r.number(
                weight, key_path(path, name), what="a weight (a number, 0 or more)", maximum=1e6
            ),
        )
        for name, weight in data.items()
    )
    if not any(weight > 0 for _, weight in weights):
        raise r.error(path, "at least one factor needs a positive weight")
    return FactorMix(weights=weights)


def _push(r: Reader, value: Any, path: str, *, default: _PushMode) -> PushPolicy:
    modes = _PUSH_MODES
    if value is None:
        return PushPolicy(mode=default)
    if isinstance(value, str):
        value = {"mode": value}
    data = r.mapping(
        value, path, what=f"a push answer ({one_of(modes)}) or a mapping with mode and after"
    )
    r.check_keys(data, path, ("after", "mode"), required=("mode",))
    mode = r.choice(data["mode"], key_path(path, "mode"), modes, what="push mode")
    after = 0.0
    if "after" in data:
        if mode not in ("approve", "reject"):
            raise r.error(
                key_path(path, "after"), f"applies to approve and reject only, not {mode}"
            )
        after = r.duration(
            data["after"], key_path(path, "after"), what="a duration", positive=False
        )
    return PushPolicy(mode=mode, after=after)


def _timeouts(r: Reader, value: Any, path: str) -> TimeoutSpec:
    data = r.mapping(value, path, what="a mapping with request, step and flow durations")
    r.check_keys(data, path, ("flow", "request", "step"))
    found = {
        key: r.duration(data[key], key_path(path, key), what="a positive duration")
        for key in ("request", "step", "flow")
        if data.get(key) is not None
    }
    timeouts = TimeoutSpec(**found)
    for key in ("request", "step"):
        limit = getattr(timeouts, key)
        if limit is not None and limit > timeouts.flow:
            raise r.error(
                key_path(path, key), f"is longer than the flow timeout ({timeouts.flow:g}s)"
            )
    return timeouts


def _retry(r: Reader, value: Any, path: str) -> RetryPolicy:
    data = r.mapping(value, path, what="a mapping with budget, base, cap, max_rate_limit_wait")
    r.check_keys(data, path, ("base", "budget", "cap", "max_rate_limit_wait", "server_errors"))
    found: dict[str, Any] = {}
    if data.get("budget") is not None:
        found["budget"] = r.integer(
            data["budget"],
            key_path(path, "budget"),
            what="a whole number of retries per flow",
            minimum=0,
            maximum=1000,
        )
    for key in ("base", "cap", "max_rate_limit_wait"):
        if data.get(key) is not None:
            found[key] = r.duration(data[key], key_path(path, key), what="a positive duration")
    if data.get("server_errors") is not None:
        flag = data["server_errors"]
        if not isinstance(flag, bool):
            where = key_path(path, "server_errors")
            raise r.error(where, f"expected true or false, got {describe(flag)}")
        found["server_errors"] = flag
    return RetryPolicy(**found)


def _lockout(r: Reader, value: Any, path: str) -> LockoutPolicy:
    data = r.mapping(value, path, what="a mapping with share, burst and refill_every")
    r.check_keys(data, path, ("burst", "refill_every", "share"))
    found: dict[str, Any] = {}
    if data.get("share") is not None:
        found["share"] = r.number(
            data["share"],
            key_path(path, "share"),
            what="the share of the failed-code bucket the tool may spend (0 < share <= 1)",
            maximum=1.0,
            positive=True,
        )
    if data.get("burst") is not None:
        found["burst"] = r.integer(
            data["burst"], key_path(path, "burst"), what="a positive whole number", minimum=1
        )
    if data.get("refill_every") is not None:
        found["refill_every"] = r.duration(
            data["refill_every"], key_path(path, "refill_every"), what="a positive duration"
        )
    return LockoutPolicy(**found)


def _thresholds(r: Reader, value: Any, path: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else r.items(value, path, what="a list of thresholds")
    thresholds = []
    for index, item in enumerate(items):
        where = item_path(path, index)
        text = r.string(item, where, what="a threshold like 'p95(flow) < 800ms'")
        try:
            check_threshold(text, source=r.source, path=where)
        except ScenarioError:
            if "${" not in item:
                raise
            # The parser quotes the expanded text; show the reference instead.
            raise r.error(where, f"invalid threshold {describe(item)}") from None
        thresholds.append(text)
    return tuple(thresholds)


def _credentials(r: Reader, value: Any, path: str) -> str:
    what = (
        "memory or sqlite:///path (relative to the current directory; sqlite:////abs for absolute)"
    )
    text = r.string(value, path, what=what)
    if text == "memory" or (text.startswith("sqlite:///") and len(text) > len("sqlite:///")):
        return text
    raise r.error(path, f"expected {what}, got {describe(value)}")


def _plain(r: Reader, value: Any, path: str, budget: list[int], depth: int = 0) -> Any:
    """A copy of free-form YAML with strings expanded; refuses non-plain values and bombs."""
    budget[0] -= 1
    if budget[0] < 0 or depth > 32:
        raise r.error(path, "too large or too deeply nested")
    if isinstance(value, str):
        return r.expand(value, path)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [
            _plain(r, item, item_path(path, i), budget, depth + 1) for i, item in enumerate(value)
        ]
    if isinstance(value, dict):
        data = r.mapping(value, path)
        return {
            key: _plain(r, item, key_path(path, key), budget, depth + 1)
            for key, item in data.items()
        }
    raise r.error(
        path, f"expected strings, numbers, booleans, lists or mappings, got {describe(value)}"
    )


def _emulator(r: Reader, value: Any, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The embedded emulator's (settings, faults) overrides, checked by the emulator."""
    data = r.mapping(value, path, what="a mapping with settings and faults")
    r.check_keys(data, path, ("faults", "settings"))
    sections: dict[str, dict[str, Any]] = {"settings": {}, "faults": {}}
    for key in sections:
        if data.get(key) is None:
            continue
        where = key_path(path, key)
        r.mapping(data[key], where)
        sections[key] = _plain(r, data[key], where, [100_000])
        check_emulator_settings({key: sections[key]}, source=r.source, path=path)
    return sections["settings"], sections["faults"]


def parse_scenario(
    data: Any, *, source: str, base_dir: Path, env: Mapping[str, str] | None = None
) -> Scenario:
    """A :class:`Scenario` from loaded YAML ``data``; ScenarioError names ``source``."""
    r = Reader(source=source, base_dir=base_dir, env=os.environ if env is None else env)
    data = r.mapping(data, "", what="a mapping of scenario keys at the top level")
    r.check_keys(data, "", _TOP_KEYS)
    name = Path(source).stem or "scenario"
    if data.get("name") is not None:
        name = r.string(data["name"], "name", what="a scenario name")
    description = r.optional_string(
        data.get("description"), "description", what="a description", empty=True
    )
    target = None if data.get("target") is None else parse_target(r, data["target"], "target")
    population: UserSource | None = None
    if data.get("users") is not None:
        population = parse_users(r, data["users"], "users")
    elif target is None:
        population = DEFAULT_POPULATION
    factors = FactorMix(weights=(("otp", 1.0),))
    if data.get("factors") is not None:
        factors = _factors(r, data["factors"], "factors")
    enrollment = r.choice(
        data.get("enrollment", "enroll"), "enrollment", _ENROLLMENT, what="enrollment policy"
    )
    push = _push(r, data.get("push"), "push", default="approve" if target is None else "manual")
    load = None if data.get("load") is None else parse_load(r, data["load"], "load")
    if load is not None and population is None:
        raise r.error("", "missing 'users' (who logs in): required with a target and a load")
    if isinstance(load, ClosedLoad) and population is not None and load.users > population.count:
        raise r.error(
            "load.users",
            f"{load.users} virtual users need at least as many users;"
            f" the population has {population.count}",
        )
    timeouts = TimeoutSpec()
    if data.get("timeouts") is not None:
        timeouts = _timeouts(r, data["timeouts"], "timeouts")
    retry = RetryPolicy()
    if data.get("retry") is not None:
        retry = _retry(r, data["retry"], "retry")
    lockout = LockoutPolicy()
    if data.get("lockout") is not None:
        lockout = _lockout(r, data["lockout"], "lockout")
    thresholds: tuple[str, ...] = ()
    if data.get("thresholds") is not None:
        thresholds = _thresholds(r, data["thresholds"], "thresholds")
    credentials = _credentials(r, data.get("credentials", DEFAULT_CREDENTIALS), "credentials")
    seed = None
    if data.get("seed") is not None:
        seed = r.integer(
            data["seed"], "seed", what="a whole number", minimum=-(2**63), maximum=2**64
        )
    settings: dict[str, Any] = {}
    faults: dict[str, Any] = {}
    if data.get("emulator") is not None:
        if target is not None:
            raise r.error(
                "emulator", "applies to the embedded emulator only; remove it or the target"
            )
        settings, faults = _emulator(r, data["emulator"], "emulator")
    journeys: tuple[Journey, ...] = ()
    if data.get("journeys") is not None:
        journeys = parse_journeys(r, data["journeys"], "journeys", population=population)
    if load is None and not journeys:
        raise r.error("", "nothing to run: give load, journeys or both")
    return Scenario(
        source=source,
        base_dir=base_dir,
        name=name,
        description=description or "",
        target=target,
        users=population if population is not None else ListedUsers(),
        factors=factors,
        enrollment=enrollment,
        push=push,
        load=load,
        timeouts=timeouts,
        retry=retry,
        lockout=lockout,
        thresholds=thresholds,
        credentials=credentials,
        seed=seed,
        emulator_settings=settings,
        emulator_faults=faults,
        journeys=journeys,
    )


def load_scenario(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> Scenario:
    """Read and validate the scenario file at ``path`` (``env`` defaults to os.environ)."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ScenarioError(f"cannot read the file: {reason}", source=source) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", source=source)
    data = read_yaml(raw, source=source)
    return parse_scenario(data, source=source, base_dir=Path(source).parent, env=env)
