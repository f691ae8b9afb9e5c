"""The complete, machine-readable report of a run, as a JSON-safe dict and a file.

Every other report (CSV, HTML) is rendered from this dict, so their figures are the same.
Latencies are in milliseconds rounded to the microsecond, rates in percent; ``snapshot``
holds the raw statistics (HDR histograms) for re-analysis or merging with other runs.
Secrets are masked: ``meta`` by field name and by pattern, every other string by pattern
(step names such as ``password`` are keys of the statistics, not secrets).
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from flowengine import jsonio
from flowengine.log import mask_secrets
from flowengine.stats import PERCENTILES, StatsSnapshot, StepStats
from flowengine.thresholds import ThresholdResult

__all__ = [
    "DISTRIBUTION_PERCENTILES",
    "FORMAT",
    "STEP_FIELDS",
    "build_report",
    "write_json",
    "write_text",
]

FORMAT: Final = "flowengine.report/1"
#: Columns of a step row, in order (``name`` first).
STEP_FIELDS: Final = (
    "name",
    "count",
    "ok",
    "errors",
    "cancelled",
    "retries",
    "error_rate_pct",
    "min_ms",
    "mean_ms",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "p99_9_ms",
    "max_ms",
)
#: Percentiles of the per-step latency distribution (the HTML's percentile curves).
DISTRIBUTION_PERCENTILES: Final = (
    0.0,
    10.0,
    25.0,
    50.0,
    75.0,
    90.0,
    95.0,
    99.0,
    99.9,
    99.99,
    100.0,
)
_SERIES_PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0, 100.0)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _pct(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100.0, 3)


def _key(p: float) -> str:
    return f"p{p:g}".replace(".", "_") + "_ms"


def _step_row(stat: StepStats, retries: int | None = None) -> dict[str, Any]:
    values = stat.percentiles(PERCENTILES)
    row: dict[str, Any] = {
        "name": stat.name,
        "count": stat.count,
        "ok": stat.ok,
        "errors": stat.errors,
        "cancelled": stat.cancelled,
        "retries": stat.retries if retries is None else retries,
        "error_rate_pct": _pct(stat.error_rate),
        "min_ms": _ms(stat.min),
        "mean_ms": _ms(stat.mean),
    }
    row.update({_key(p): _ms(values[p]) for p in PERCENTILES})
    row["max_ms"] = _ms(stat.max)
    return {field: row[field] for field in STEP_FIELDS}


def _summary(snapshot: StatsSnapshot) -> dict[str, Any]:
    return {
        "duration_s": round(snapshot.elapsed, 3),
        "started": snapshot.started,
        "succeeded": snapshot.succeeded,
        "failed": snapshot.failed,
        "cancelled": snapshot.cancelled,
        "in_flight": snapshot.in_flight,
        "missed_starts": snapshot.missed_starts,
        "retries": snapshot.retries,
        "flows_per_second": round(snapshot.flows_per_second, 3),
        "error_rate_pct": _pct(snapshot.error_rate),
    }


def _series(snapshot: StatsSnapshot) -> list[dict[str, Any]]:
    rows = []
    for item in snapshot.dense_series():
        seconds = snapshot.interval_seconds(item)
        values = item.percentiles(_SERIES_PERCENTILES)
        rows.append(
            {
                "t_s": round(item.index * snapshot.interval, 3),
                "seconds": round(seconds, 3),
                "started": item.started,
                "succeeded": item.succeeded,
                "failed": item.failed,
                "cancelled": item.cancelled,
                "missed_starts": item.missed_starts,
                "flows_per_second": round(item.completed / seconds, 3),
                "p50_ms": _ms(values[50.0]),
                "p90_ms": _ms(values[90.0]),
                "p95_ms": _ms(values[95.0]),
                "p99_ms": _ms(values[99.0]),
                "max_ms": _ms(values[100.0]),
            }
        )
    return rows


def _worker_row(name: str, snapshot: StatsSnapshot) -> dict[str, Any]:
    flow = snapshot.flow
    return {
        "worker": name,
        **_summary(snapshot),
        "p50_ms": _ms(flow.percentile(50.0)),
        "p95_ms": _ms(flow.percentile(95.0)),
        "p99_ms": _ms(flow.percentile(99.0)),
    }


def _json_safe(value: Any) -> Any:
    """Plain JSON types: mappings, lists, str, int, float, bool, None; the rest as text."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, enum.Enum):
        return _json_safe(value.value)
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _scrub(value: Any) -> Any:
    """Mask secret-looking text in every string, dict keys included."""
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return mask_secrets(value)
    return value


def build_report(
    snapshot: StatsSnapshot,
    meta: Mapping[str, Any],
    *,
    thresholds: Sequence[ThresholdResult] = (),
    workers: Mapping[str, StatsSnapshot] | None = None,
    journeys: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The complete report: meta, summary, thresholds, steps, errors, series, workers, raw;
    with ``journeys``, their results per journey, user and step."""
    ordered = [snapshot.flow, *snapshot.ordered_steps()]
    errors = sorted(snapshot.errors.items(), key=lambda kv: (-kv[1], kv[0]))
    report = {
        "format": FORMAT,
        "summary": _summary(snapshot),
        "passed": all(t.passed for t in thresholds),
        "thresholds": [t.to_dict() for t in thresholds],
        "steps": [
            _step_row(snapshot.flow, snapshot.retries),  # a flow's retries: all its steps'
            *(_step_row(s) for s in ordered[1:]),
        ],
        "distribution": {
            s.name: [[p, _ms(v)] for p, v in s.percentiles(DISTRIBUTION_PERCENTILES).items()]
            for s in ordered
            if s.timed
        },
        "errors": [{"kind": kind, "count": n} for kind, n in errors],
        "workers": [_worker_row(name, s) for name, s in (workers or {}).items()],
    }
    raw = snapshot.to_dict()
    raw_series = raw.pop("series")
    masked = _scrub(report)
    masked["series"] = _series(snapshot)  # numbers only, by construction
    masked["snapshot"] = {**_scrub(raw), "series": raw_series}
    masked_meta = _scrub(mask_secrets(_json_safe(meta)))
    order = ("format", "summary", "passed", "thresholds", "steps", "distribution", "errors",
             "series", "workers", "snapshot")  # fmt: skip
    result = {"format": FORMAT, "meta": masked_meta, **{key: masked[key] for key in order}}
    if journeys is not None:
        result["journeys"] = _scrub(mask_secrets(_json_safe(journeys)))
    return result


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` atomically (temporary file, then rename): no half-written report."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def write_json(path: Path, report: Mapping[str, Any]) -> Path:
    """Write the report as indented JSON."""
    return write_text(path, jsonio.dumps_text(report, indent=True) + "\n")
