"""CSV reports: one row per step (and the whole flow), and the time series.

Both are rendered from the JSON report's dict, so their figures are the JSON's. Latencies
are in milliseconds; an empty cell means no data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from flowengine.report.json import STEP_FIELDS, write_text

__all__ = ["SERIES_FIELDS", "series_csv", "steps_csv", "write_series_csv", "write_steps_csv"]

#: Columns of the time-series CSV.
SERIES_FIELDS: Final = (
    "t_s",
    "seconds",
    "started",
    "succeeded",
    "failed",
    "cancelled",
    "missed_starts",
    "flows_per_second",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # a spreadsheet must not run a step name as a formula
    return value


def _render(fields: Sequence[str], rows: Sequence[Mapping[str, Any]], first: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([first, *fields[1:]])
    for row in rows:
        writer.writerow([_cell(row.get(field)) for field in fields])
    return out.getvalue()


def steps_csv(report: Mapping[str, Any]) -> str:
    """Per-step rows: step, count, ok, errors, ..., min/mean/p50/p90/p95/p99/p99.9/max ms."""
    return _render(STEP_FIELDS, report["steps"], "step")


def series_csv(report: Mapping[str, Any]) -> str:
    """One row per interval: counts, flows/s and flow latency percentiles."""
    return _render(SERIES_FIELDS, report["series"], SERIES_FIELDS[0])


def write_steps_csv(path: Path, report: Mapping[str, Any]) -> Path:
    """Write :func:`steps_csv` to ``path``."""
    return write_text(path, steps_csv(report))


def write_series_csv(path: Path, report: Mapping[str, Any]) -> Path:
    """Write :func:`series_csv` to ``path``."""
    return write_text(path, series_csv(report))
