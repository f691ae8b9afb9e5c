"""Scenario files: YAML in, validated attrs classes out (format: docs/scenarios.md).

``load_scenario(path)`` returns a :class:`Scenario` or raises one :class:`ScenarioError`
naming the file, the key path and what was expected, e.g.
``flows/x.yaml: load.rate: expected a positive number of flows per second ..., got 'fast'``.
"""

from __future__ import annotations

from flowengine.spec.hooks import BUILTIN_FACTORS, check_threshold, known_factors
from flowengine.spec.journeys import Journey
from flowengine.spec.load import ClosedLoad, LoadSpec, OpenLoad, Stage, ThinkTime
from flowengine.spec.scenario import (
    DEFAULT_CREDENTIALS,
    DEFAULT_POPULATION,
    FactorMix,
    PushPolicy,
    Scenario,
    TimeoutSpec,
    load_scenario,
    parse_scenario,
)
from flowengine.spec.steps import (
    Delete,
    Enroll,
    Expectation,
    ExpireMfaToken,
    LatencyBound,
    ListAuthenticators,
    Login,
    Push,
    RecoveryCode,
    Refresh,
    Repeat,
    Step,
    StepBase,
    Userinfo,
    Wait,
    WrongCode,
)
from flowengine.spec.target import Target
from flowengine.spec.units import parse_duration, parse_rate
from flowengine.spec.users import CsvUsers, ListedUsers, PatternUsers, UserSource, UserSpec

__all__ = [
    "BUILTIN_FACTORS",
    "ClosedLoad",
    "CsvUsers",
    "DEFAULT_CREDENTIALS",
    "DEFAULT_POPULATION",
    "Delete",
    "Enroll",
    "Expectation",
    "ExpireMfaToken",
    "FactorMix",
    "Journey",
    "LatencyBound",
    "ListAuthenticators",
    "ListedUsers",
    "LoadSpec",
    "Login",
    "OpenLoad",
    "PatternUsers",
    "Push",
    "PushPolicy",
    "RecoveryCode",
    "Refresh",
    "Repeat",
    "Scenario",
    "Stage",
    "Step",
    "StepBase",
    "Target",
    "ThinkTime",
    "TimeoutSpec",
    "UserSource",
    "UserSpec",
    "Userinfo",
    "Wait",
    "WrongCode",
    "check_threshold",
    "known_factors",
    "load_scenario",
    "parse_duration",
    "parse_rate",
    "parse_scenario",
]
