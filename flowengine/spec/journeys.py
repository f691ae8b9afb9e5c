"""Journeys: named, ordered steps for a group of users, parsed and validated.

The step classes live in :mod:`flowengine.spec.steps`. Values flow between steps through
the credential store, not through variables.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, Literal

import attrs

from flowengine.spec._read import Reader, describe, did_you_mean, item_path, key_path, one_of
from flowengine.spec.hooks import known_factors
from flowengine.spec.population import parse_users
from flowengine.spec.steps import (
    CODE_FACTORS,
    ERROR_CODES,
    OUTCOMES,
    Delete,
    Enroll,
    Expectation,
    ExpireMfaToken,
    LatencyBound,
    ListAuthenticators,
    Login,
    Outcome,
    Push,
    RecoveryCode,
    Refresh,
    Repeat,
    Step,
    Userinfo,
    Wait,
    WrongCode,
)
from flowengine.spec.users import UserSource

__all__ = ["Journey", "MAX_DEPTH", "STEP_KINDS", "parse_journeys"]

MAX_DEPTH = 8
"""How deeply ``repeat`` blocks may nest."""

_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_BOUND = re.compile(r"\s*(<=|<)\s*(.*)\Z")
_RECOVERY: tuple[Literal["issued", "unchanged"], ...] = ("issued", "unchanged")
_ANSWERS: tuple[Literal["approve", "reject", "ignore", "manual"], ...] = (
    "approve",
    "ignore",
    "manual",
    "reject",
)
_ID_PREFIXES = ("totp|", "sms|", "voice|", "email|", "push|", "recovery-code|")


@attrs.frozen(kw_only=True)
class Journey:
    """Named, ordered steps that each user of a group goes through, all users at once."""

    name: str
    description: str = ""
    users: UserSource
    steps: tuple[Step, ...]
    path: str
    """Where the journey is in the file, e.g. ``journeys[0]``."""


# --- parsing ------------------------------------------------------------------------------

_Args = dict[str, Any]
_StepParser = Callable[[Reader, Any, str, int], _Args]


def _factor(r: Reader, value: Any, path: str, *, extra: tuple[str, ...] = ()) -> str:
    return r.choice(value, path, (*known_factors(), *extra), what="factor")


def _no_argument(r: Reader, value: Any, path: str) -> None:
    if value is not None and value != {}:
        raise r.error(path, f"takes no argument; write {{}} or nothing, got {describe(value)}")


def _login(r: Reader, value: Any, path: str, depth: int) -> _Args:
    return {"factor": _factor(r, value, path, extra=("any",))}


def _enroll(r: Reader, value: Any, path: str, depth: int) -> _Args:
    return {"factor": _factor(r, value, path)}


def _wrong_code(r: Reader, value: Any, path: str, depth: int) -> _Args:
    if isinstance(value, str):
        value = {"factor": value}
    data = r.mapping(value, path, what="a factor or a mapping with factor and times")
    r.check_keys(data, path, ("factor", "times"), required=("factor",))
    factor = _factor(r, data["factor"], key_path(path, "factor"))
    if factor not in CODE_FACTORS:
        raise r.error(
            key_path(path, "factor"),
            f"{factor} has no code to get wrong; expected one of {one_of(CODE_FACTORS)}",
        )
    times = r.integer(
        data.get("times", 1),
        key_path(path, "times"),
        what="a number of wrong codes from 1 to 100",
        minimum=1,
        maximum=100,
    )
    return {"factor": factor, "times": times}


def _expire_mfa_token(r: Reader, value: Any, path: str, depth: int) -> _Args:
    if value is None or value == {}:
        return {}
    data = r.mapping(value, path, what="{} or a mapping with factor")
    r.check_keys(data, path, ("factor",))
    return {"factor": _factor(r, data["factor"], key_path(path, "factor"), extra=("any",))}


def _nothing(r: Reader, value: Any, path: str, depth: int) -> _Args:
    _no_argument(r, value, path)
    return {}


def _push(r: Reader, value: Any, path: str, depth: int) -> _Args:
    return {"answer": r.choice(value, path, _ANSWERS, what="push answer")}


def _delete(r: Reader, value: Any, path: str, depth: int) -> _Args:
    factors = known_factors()
    what = f"a factor ({one_of(factors)}), an authenticator id like 'sms|dev_...' or 'all'"
    text = r.string(value, path, what=what)
    if text == "all":
        return {}
    if text in factors:
        return {"factor": text}
    if "|" in text:
        if not text.startswith(_ID_PREFIXES) or text.endswith("|"):
            raise r.error(
                path,
                f"expected an authenticator id starting with one of"
                f" {', '.join(_ID_PREFIXES)}, got {describe(value)}",
            )
        return {"authenticator_id": text}
    raise r.error(path, f"unknown factor {describe(value)}; expected {what}")


def _wait(r: Reader, value: Any, path: str, depth: int) -> _Args:
    return {"seconds": r.duration(value, path, what="a duration", positive=False)}


def _repeat(r: Reader, value: Any, path: str, depth: int) -> _Args:
    data = r.mapping(value, path, what="a mapping with times and steps")
    r.check_keys(data, path, ("steps", "times"), required=("times", "steps"))
    if depth >= MAX_DEPTH:
        raise r.error(path, f"repeat blocks nest more than {MAX_DEPTH} deep")
    times = r.integer(
        data["times"],
        key_path(path, "times"),
        what="a number of repetitions from 1 to 10000",
        minimum=1,
        maximum=10_000,
    )
    return {"times": times, "steps": _steps(r, data["steps"], key_path(path, "steps"), depth + 1)}


STEP_KINDS: dict[str, tuple[type[Step], _StepParser]] = {
    "login": (Login, _login),
    "enroll": (Enroll, _enroll),
    "wrong_code": (WrongCode, _wrong_code),
    "expire_mfa_token": (ExpireMfaToken, _expire_mfa_token),
    "recovery_code": (RecoveryCode, _nothing),
    "push": (Push, _push),
    "list_authenticators": (ListAuthenticators, _nothing),
    "delete": (Delete, _delete),
    "refresh": (Refresh, _nothing),
    "userinfo": (Userinfo, _nothing),
    "wait": (Wait, _wait),
    "repeat": (Repeat, _repeat),
}
"""Every step: its key -> (class, argument parser)."""


def _error_code(r: Reader, value: Any, path: str) -> str:
    code = r.string(value, path, what="an error code like invalid_grant")
    if not _CODE.match(code):
        raise r.error(path, f"expected an error code like invalid_grant, got {describe(value)}")
    if code not in ERROR_CODES:
        close = difflib.get_close_matches(code, sorted(ERROR_CODES), n=1, cutoff=0.8)
        if close:
            raise r.error(path, f"unknown error code {describe(value)}; did you mean {close[0]!r}?")
    return code


def _expectation(r: Reader, value: Any, path: str, cls: type[Step]) -> Expectation | None:
    default = cls.default_outcome
    if default is None:
        if value is not None:
            raise r.error(path, f"{cls.kind} takes no expectation")
        return None
    if value is None:
        return Expectation(outcome=default)
    data = r.mapping(value, path, what="a mapping of expectations")
    for key in data:
        if key not in cls.expect_keys:
            everywhere = {"outcome", "error", "latency", "authenticators", "recovery_code"}
            if key in everywhere:
                raise r.error(
                    key_path(path, key),
                    f"does not apply to {cls.kind}; expected one of {one_of(cls.expect_keys)}",
                )
            hint = (
                did_you_mean(key, cls.expect_keys) or f"; expected one of {one_of(cls.expect_keys)}"
            )
            raise r.error(key_path(path, key), f"unknown expectation{hint}")
    error = None
    if data.get("error") is not None:
        error = _error_code(r, data["error"], key_path(path, "error"))
    outcome: Outcome = "failed" if error is not None else default
    if "outcome" in data:
        outcome = r.choice(data["outcome"], key_path(path, "outcome"), OUTCOMES, what="outcome")
        if outcome == "success" and error is not None:
            raise r.error(key_path(path, "error"), "an error code contradicts outcome: success")
    authenticators = None
    if "authenticators" in data:
        authenticators = r.integer(
            data["authenticators"],
            key_path(path, "authenticators"),
            what="a number of authenticators (0 or more)",
            minimum=0,
            maximum=1000,
        )
    recovery_code = None
    if "recovery_code" in data:
        recovery_code = r.choice(
            data["recovery_code"],
            key_path(path, "recovery_code"),
            _RECOVERY,
            what="recovery_code expectation",
        )
    latency = None
    if "latency" in data:
        latency = _latency(r, data["latency"], key_path(path, "latency"))
    return Expectation(
        outcome=outcome,
        error=error,
        authenticators=authenticators,
        recovery_code=recovery_code,
        latency=latency,
    )


def _latency(r: Reader, value: Any, path: str) -> LatencyBound:
    what = "a bound like '< 2s' or '<= 500ms'"
    text = r.string(value, path, what=what)
    found = _BOUND.match(text)
    if found is None:
        raise r.error(path, f"expected {what}, got {describe(value)}")
    seconds = r.duration(found.group(2), path, what=what)
    return LatencyBound(seconds=seconds, inclusive=found.group(1) == "<=")


def _step(r: Reader, value: Any, path: str, depth: int) -> Step:
    if isinstance(value, str) and value in STEP_KINDS:
        value = {value: None}
    data = r.mapping(value, path, what=f"a step: one of {one_of(STEP_KINDS)}")
    kinds = [key for key in data if key not in ("name", "expect")]
    for key in kinds:
        if key not in STEP_KINDS:
            hint = did_you_mean(key, STEP_KINDS) or f"; expected one of {one_of(STEP_KINDS)}"
            raise r.error(key_path(path, key), f"unknown step{hint}")
    if not kinds:
        raise r.error(path, f"missing the step: one of {one_of(STEP_KINDS)}")
    if len(kinds) > 1:
        raise r.error(path, f"one step per list item, got {' and '.join(kinds)}")
    kind = kinds[0]
    cls, parse = STEP_KINDS[kind]
    args = parse(r, data[kind], key_path(path, kind), depth)
    name = r.optional_string(data.get("name"), key_path(path, "name"), what="a step name")
    expect = _expectation(r, data.get("expect"), key_path(path, "expect"), cls)
    return cls(path=path, name=name, expect=expect, **args)


def _steps(r: Reader, value: Any, path: str, depth: int) -> tuple[Step, ...]:
    items = r.items(value, path, what="a list of steps")
    if not items:
        raise r.error(path, "expected at least one step, got an empty list")
    return tuple(_step(r, item, item_path(path, index), depth) for index, item in enumerate(items))


_JOURNEY_KEYS = ("description", "name", "password", "steps", "users")


def parse_journeys(
    r: Reader, value: Any, path: str, *, population: UserSource | None
) -> tuple[Journey, ...]:
    """The ``journeys:`` list; listed users without a password come from ``population``."""
    items = r.items(value, path, what="a list of journeys")
    journeys: list[Journey] = []
    owners: dict[str, int] = {}
    for index, item in enumerate(items):
        where = item_path(path, index)
        data = r.mapping(item, where, what="a journey: a mapping with name, users and steps")
        r.check_keys(data, where, _JOURNEY_KEYS, required=("name", "users", "steps"))
        name = r.string(data["name"], key_path(where, "name"), what="a journey name")
        if not _NAME.match(name):
            raise r.error(
                key_path(where, "name"), "expected letters, digits, '-', '_' or '.' (at most 64)"
            )
        if any(journey.name == name for journey in journeys):
            raise r.error(
                key_path(where, "name"), f"another journey is named {describe(data['name'])}"
            )
        description = r.string(
            data.get("description", ""),
            key_path(where, "description"),
            what="a description",
            empty=True,
        )
        users = parse_users(
            r,
            data["users"],
            key_path(where, "users"),
            population=population,
            password=data.get("password"),
            password_path=key_path(where, "password"),
        )
        if users.count <= 10_000:
            for user in users.iter_users():
                other = owners.setdefault(user.username, index)
                if other != index:
                    raise r.error(
                        key_path(where, "users"),
                        f"{user.username!r} is also in"
                        f" {item_path(path, other)}; journeys run at the same time",
                    )
        steps = _steps(r, data["steps"], key_path(where, "steps"), 0)
        journeys.append(
            Journey(name=name, description=description, users=users, steps=steps, path=where)
        )
    return tuple(journeys)
