"""Durations and rates as scenario files write them.

Durations: ``250ms``, ``30s``, ``2m``, ``1h``, compounds such as ``1m30s``, or a number of
seconds. Rates: ``10/s``, ``600/m``, ``36000/h``, or a number per second. The command line
uses the same syntax (``flowengine run --rate 100/s --duration 2m``).
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_RATE", "MAX_SECONDS", "parse_duration", "parse_rate"]

MAX_SECONDS = 1e9
"""The longest duration accepted (about 31 years): larger values are typos."""
MAX_RATE = 1e9
"""The highest rate accepted, per second."""

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_PLAIN = re.compile(rf"\s*({_NUMBER})\s*\Z")
_DURATION = re.compile(rf"(?:\s*{_NUMBER}\s*(?:ms|s|m|h))+\s*\Z")
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h)")
_RATE = re.compile(rf"\s*({_NUMBER})\s*/\s*(s|m|h)\s*\Z")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _number(value: object) -> float | None:
    """``value`` as a finite float if it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_duration(value: object) -> float:
    """Seconds in ``value`` (``250ms``, ``30s``, ``2m``, ``1h``, ``1m30s``, a number).

    Raises ``ValueError`` for anything else, a negative duration, or one over MAX_SECONDS.
    """
    seconds = _number(value)
    if seconds is None and isinstance(value, str):
        plain = _PLAIN.match(value)
        if plain:
            seconds = float(plain.group(1))
        elif _DURATION.match(value):
            seconds = sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(value))
    if seconds is None or not 0 <= seconds <= MAX_SECONDS:
        raise ValueError("not a duration")
    return seconds


def parse_rate(value: object) -> float:
    """Events per second in ``value`` (``10/s``, ``600/m``, ``36000/h``, a number).

    Raises ``ValueError`` for anything else, a negative rate, or one over MAX_RATE.
    """
    rate = _number(value)
    if rate is None and isinstance(value, str):
        plain = _PLAIN.match(value)
        per = _RATE.match(value)
        if plain:
            rate = float(plain.group(1))
        elif per:
            rate = float(per.group(1)) / _SECONDS[per.group(2)]
    if rate is None or not 0 <= rate <= MAX_RATE:
        raise ValueError("not a rate")
    return rate
