"""Pass/fail thresholds in k6's spirit, checked against a stats snapshot.

A threshold is ``METRIC OP VALUE``, with ``OP`` one of ``< <= > >= == !=``::

    p95(flow) < 800ms            latency: p<N>(name), avg/mean/med/min/max(name);
    p99(grant:mfa-otp) <= 1s       name is a step or "flow" (the default); VALUE is a
    max(push_wait) < 2m            duration in us, µs, ms, s or m (a bare number is ms)
    error_rate < 1%              failed / finished flows, or of a step: error_rate(password);
    error_rate(password) < 0.005   VALUE is a percentage or a fraction from 0 to 1
    flows_per_second > 100       completed flows per second of the run
    missed_starts == 0           counts: missed_starts, started, succeeded, failed,
    retries(password) < 10         cancelled, retries[(name)], count(name), errors(name)

A threshold whose metric has no data (a step that never ran, no finished flow) fails, so a
misspelt step name cannot pass unnoticed.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

import attrs

from flowengine.errors import ScenarioError
from flowengine.stats import FLOW, StatsSnapshot

__all__ = ["Threshold", "ThresholdResult", "evaluate", "parse_threshold", "parse_thresholds"]

Kind = Literal["latency", "ratio", "rate", "count"]

_OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_EXPRESSION = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*"
    r"(?:\(\s*(?P<target>[^()]*?)\s*\))?\s*"
    r"(?P<op><=|>=|==|!=|<|>|=)\s*(?P<value>.*?)\s*$"
)
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_DURATION = re.compile(rf"^{_NUMBER}\s*(us|µs|ms|s|m)?$")
_RATIO = re.compile(rf"^{_NUMBER}\s*(%)?$")
_RATE = re.compile(rf"^{_NUMBER}\s*(/s)?$")
_COUNT = re.compile(r"^\d+$")
_TARGET = re.compile(r"^[A-Za-z0-9_:.\-]+$")
_SECONDS: Final = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_LATENCY_NAMES: Final = ("avg", "mean", "med", "min", "max")
_TOTALS: Final = ("missed_starts", "started", "succeeded", "failed", "cancelled")
_PER_NAME_COUNTS: Final = ("retries", "count", "errors")
_KNOWN = (
    "p<N>(name), avg(name), mean(name), med(name), min(name), max(name), error_rate[(name)], "
    "flows_per_second, missed_starts, started, succeeded, failed, cancelled, retries[(name)], "
    "count(name), errors(name)"
)


@attrs.frozen
class Threshold:
    """One parsed threshold; ``limit`` is in seconds (latency), a fraction (ratio), flows/s
    (rate) or a number (count)."""

    expression: str
    metric: str
    target: str | None
    op: str
    limit: float
    kind: Kind

    def observe(self, snapshot: StatsSnapshot) -> float | None:
        """The snapshot's value for this metric, or None when it has no data."""
        metric, name = self.metric, self.target or FLOW
        if self.kind == "rate":
            return snapshot.flows_per_second if snapshot.elapsed > 0 else None
        if metric in _TOTALS:
            return float(getattr(snapshot, metric))
        if metric == "retries" and self.target is None:
            return float(snapshot.retries)
        if not snapshot.has(name):
            return None
        stat = snapshot.stat(name)
        if metric in _PER_NAME_COUNTS:
            return float(getattr(stat, metric))
        if metric == "error_rate":
            return stat.error_rate
        if metric in ("avg", "mean"):
            return stat.mean
        if metric == "min":
            return stat.min
        if metric == "max":
            return stat.max
        percentile = 50.0 if metric == "med" else float(metric[1:])
        return stat.percentile(percentile)

    def holds(self, observed: float | None) -> bool:
        """Whether ``observed`` satisfies the threshold (no data never does)."""
        if observed is None or math.isnan(observed):
            return False
        return _OPERATORS[self.op](observed, self.limit)

    @property
    def unit(self) -> str:
        """Unit of :meth:`display` values: ``ms``, ``%``, ``flows/s`` or empty."""
        return {"latency": "ms", "ratio": "%", "rate": "flows/s", "count": ""}[self.kind]

    def display(self, value: float | None) -> float | int | None:
        """A value in :attr:`unit` (ms, percent, flows/s; counts as ints), rounded to 0.001."""
        if value is None:
            return None
        if self.kind == "count":
            return round(value)
        scale = {"latency": 1000.0, "ratio": 100.0, "rate": 1.0, "count": 1.0}[self.kind]
        return round(value * scale, 3)


@attrs.frozen
class ThresholdResult:
    """A threshold checked against a snapshot."""

    threshold: Threshold
    #: The snapshot's value in the threshold's base unit, or None when there was no data.
    observed: float | None
    passed: bool

    @property
    def expression(self) -> str:
        """The threshold as written."""
        return self.threshold.expression

    def describe(self) -> str:
        """One line for people, e.g. ``p95(flow) < 800ms: 812.4 ms, failed``."""
        shown = self.threshold.display(self.observed)
        number = f"{shown:.3f}".rstrip("0").rstrip(".") if shown is not None else ""
        value = f"{number} {self.threshold.unit}".rstrip() if number else "no data"
        return f"{self.expression}: {value}, {'passed' if self.passed else 'failed'}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; ``observed`` and ``limit`` are in ``unit`` (ms, %, flows/s)."""
        t = self.threshold
        return {
            "expression": t.expression,
            "metric": t.metric,
            "target": t.target,
            "op": t.op,
            "limit": t.display(t.limit),
            "observed": t.display(self.observed),
            "unit": t.unit,
            "passed": self.passed,
        }


def _bad(text: str, expected: str, source: str | None, path: str | None) -> ScenarioError:
    return ScenarioError(f"threshold {text!r}: {expected}", source=source, path=path)


def _kind(metric: str, target: str | None, text: str, where: tuple[Any, Any]) -> Kind:
    match = _PERCENTILE.match(metric)
    if match:
        if not 0.0 <= float(match.group(1)) <= 100.0:
            raise _bad(text, "a percentile is between p0 and p100", *where)
        return "latency"
    if metric in _LATENCY_NAMES:
        return "latency"
    if metric == "error_rate":
        return "ratio"
    if metric == "flows_per_second":
        if target is not None:
            raise _bad(text, "flows_per_second takes no step name", *where)
        return "rate"
    if metric in _TOTALS:
        if target is not None:
            raise _bad(text, f"{metric} counts whole flows and takes no step name", *where)
        return "count"
    if metric in _PER_NAME_COUNTS:
        return "count"
    raise _bad(text, f"unknown metric {metric!r}; expected one of {_KNOWN}", *where)


def _limit(kind: Kind, value: str, text: str, where: tuple[Any, Any]) -> float:
    if kind == "latency":
        match = _DURATION.match(value)
        if not match:
            raise _bad(
                text, f"expected a duration like 800ms, 1.5s or 250us, got {value!r}", *where
            )
        return float(match.group(1)) * _SECONDS[match.group(2) or "ms"]
    if kind == "ratio":
        match = _RATIO.match(value)
        if not match:
            raise _bad(text, f"expected a percentage like 1% or a fraction, got {value!r}", *where)
        number = float(match.group(1))
        if match.group(2):
            return number / 100.0
        if number > 1:
            raise _bad(text, f"a bare number is a fraction from 0 to 1; write {value}%", *where)
        return number
    if kind == "rate":
        match = _RATE.match(value)
        if not match:
            raise _bad(text, f"expected a number of flows per second, got {value!r}", *where)
        return float(match.group(1))
    if not _COUNT.match(value):
        raise _bad(text, f"expected a whole number, got {value!r}", *where)
    return float(value)


def parse_threshold(text: str, *, source: str | None = None, path: str | None = None) -> Threshold:
    """Parse one threshold; raises ScenarioError naming it and what was expected."""
    where = (source, path)
    if not isinstance(text, str):
        raise _bad(str(text), "expected a string like 'p95(flow) < 800ms'", *where)
    match = _EXPRESSION.match(text)
    if not match:
        raise _bad(text, "expected METRIC OP VALUE, like 'p95(flow) < 800ms'", *where)
    metric, target, op, value = match.group("metric", "target", "op", "value")
    if op == "=":
        raise _bad(text, "'=' is not an operator; use '==' (or <, <=, >, >=, !=)", *where)
    if target is not None and not _TARGET.match(target):
        raise _bad(text, f"expected a step name or 'flow' in parentheses, got {target!r}", *where)
    kind = _kind(metric, target, text, where)
    if not value:
        raise _bad(text, f"expected a value after {op!r}", *where)
    return Threshold(text.strip(), metric, target, op, _limit(kind, value, text, where), kind)


def parse_thresholds(
    texts: Iterable[str], *, source: str | None = None, path: str = "thresholds"
) -> list[Threshold]:
    """Parse several thresholds; an error names ``path[i]``."""
    return [
        parse_threshold(text, source=source, path=f"{path}[{i}]") for i, text in enumerate(texts)
    ]


def evaluate(
    thresholds: Iterable[Threshold | str], snapshot: StatsSnapshot
) -> list[ThresholdResult]:
    """Check each threshold (parsed or text) against ``snapshot``."""
    results = []
    for item in thresholds:
        threshold = parse_threshold(item) if isinstance(item, str) else item
        observed = threshold.observe(snapshot)
        results.append(ThresholdResult(threshold, observed, threshold.holds(observed)))
    return results
