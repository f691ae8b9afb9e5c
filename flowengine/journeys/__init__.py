"""Scripted multi-user journeys: each group's users through their steps, all at once.

:class:`JourneyRunner` runs a scenario's journeys over an :class:`~flowengine.engine.Engine`
(the runner's, next to any load); :mod:`flowengine.journeys.actions` says what each step
kind does; :mod:`flowengine.journeys.results` checks expectations and holds the results
the reports show. User documentation: ``docs/journeys.md``.
"""

from __future__ import annotations

from flowengine.journeys.actions import MFA_API_SCOPE, JourneyUser, StepActions, count_enrolled
from flowengine.journeys.control import EmulatorControl, mfa_token_expiry
from flowengine.journeys.results import (
    Column,
    JourneyResult,
    JourneysResult,
    Observed,
    StepResult,
    UserResult,
    check,
)
from flowengine.journeys.runner import (
    JourneyRunner,
    mfa_api_engine,
    seeded_users,
    sibling_engine,
)

__all__ = [
    "Column",
    "EmulatorControl",
    "JourneyResult",
    "JourneyRunner",
    "JourneyUser",
    "JourneysResult",
    "MFA_API_SCOPE",
    "Observed",
    "StepActions",
    "StepResult",
    "UserResult",
    "check",
    "count_enrolled",
    "mfa_api_engine",
    "mfa_token_expiry",
    "seeded_users",
    "sibling_engine",
]
