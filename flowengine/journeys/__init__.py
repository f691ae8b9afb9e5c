"""Scripted multi-user journeys: each group's users through their steps, all at once.

:class:`JourneyRunner` runs a scenario's journeys over an :class:`~flowengine.engine.Engine`
(the runner's, next to any load). What each step kind does: :mod:`.actions` and
:mod:`.mfa`; how its outcome is read: :mod:`.observe`; expectations and the results the
reports show: :mod:`.results`. User documentation: ``docs/journeys.md``.
"""

from __future__ import annotations

from flowengine.journeys.actions import StepActions
from flowengine.journeys.control import EmulatorControl, mfa_token_expiry
from flowengine.journeys.mfa import MFA_API_SCOPE
from flowengine.journeys.observe import JourneyUser, count_enrolled
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
