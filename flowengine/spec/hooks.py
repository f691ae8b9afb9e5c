"""Where scenario validation asks other modules: the factor registry and the threshold parser.

Both are looked up when called, so a factor registered at run time (or shipped under the
``flowengine.factors`` entry point group) is accepted, and the threshold grammar lives in
one place only.
"""

from __future__ import annotations

import importlib
from typing import Any

from flowengine.errors import ScenarioError

__all__ = ["BUILTIN_FACTORS", "check_threshold", "known_factors"]

BUILTIN_FACTORS: tuple[str, ...] = ("email", "otp", "push", "recovery-code", "sms", "voice")
"""The factors flowengine ships (docs/design.md), valid even before their strategies load."""


def _optional_module(name: str) -> Any:
    """The module ``name``, or None when it does not exist (yet)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None
        raise


def known_factors() -> tuple[str, ...]:
    """Every factor name a scenario may use: the built-ins and the registered strategies."""
    registered: tuple[str, ...] = ()
    for module_name in ("flowengine.factors", "flowengine.factors.base"):
        module = _optional_module(module_name)
        lister = getattr(module, "registered_factors", None)
        if callable(lister):
            registered = tuple(lister())
            break
    return tuple(sorted({*BUILTIN_FACTORS, *registered}))


def check_threshold(text: str, *, source: str, path: str) -> None:
    """Raise ScenarioError naming ``source`` and ``path`` if ``text`` is not a valid threshold.

    Delegates to ``flowengine.thresholds.parse_threshold``; accepts anything while that
    module does not exist.
    """
    module = _optional_module("flowengine.thresholds")
    parse = getattr(module, "parse_threshold", None)
    if not callable(parse):
        return
    try:
        parse(text, source=source, path=path)
    except ScenarioError:
        raise
    except ValueError as exc:
        raise ScenarioError(str(exc) or "invalid threshold", source=source, path=path) from None
