"""Where scenario validation asks other modules: factors, thresholds, emulator settings.

Each is looked up when called, so a factor registered at run time (or shipped under the
``flowengine.factors`` entry point group) is accepted, and each grammar lives in one place.
"""

from __future__ import annotations

import importlib
from typing import Any

from flowengine.errors import ConfigError, ScenarioError

__all__ = ["BUILTIN_FACTORS", "check_emulator_settings", "check_threshold", "known_factors"]

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


def check_emulator_settings(sections: dict[str, Any], *, source: str, path: str) -> None:
    """Raise ScenarioError naming ``source`` and ``path.key`` if the emulator refuses the
    tenant-file ``sections`` (``settings``, ``faults``).

    Delegates to ``flowengine.emulator.tenant.parse_tenant``; accepts anything while that
    module does not exist.
    """
    module = _optional_module("flowengine.emulator.tenant")
    parse = getattr(module, "parse_tenant", None)
    if not callable(parse):
        return
    try:
        parse(sections, source)
    except ConfigError as exc:
        message = str(exc)
        prefix = ": ".join(part for part in (exc.source, exc.path) if part) + ": "
        message = message.removeprefix(prefix)
        where = path if not exc.path else f"{path}.{exc.path}"
        raise ScenarioError(message, source=source, path=where.rstrip(".")) from None
