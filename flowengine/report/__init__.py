"""Reports of a run: complete JSON, CSV (steps and time series) and one offline HTML page.

``write_reports(directory, snapshot, meta, thresholds=...)`` writes them all from one report
dict (:func:`build_report`), so every file shows the same figures; a run with journeys adds
their view (``journeys`` in the JSON, ``journeys.csv``, tables in the HTML).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from flowengine.report.csv import write_series_csv, write_steps_csv
from flowengine.report.html import write_html
from flowengine.report.journeys import JOURNEYS_CSV, write_journeys_csv
from flowengine.report.json import build_report, write_json
from flowengine.stats import StatsSnapshot
from flowengine.thresholds import ThresholdResult

__all__ = ["FILE_NAMES", "build_report", "write_reports"]

#: Report kind -> file name inside the report directory.
FILE_NAMES: Final = {
    "json": "report.json",
    "steps_csv": "steps.csv",
    "series_csv": "series.csv",
    "html": "report.html",
}


def write_reports(
    directory: str | Path,
    snapshot: StatsSnapshot,
    meta: Mapping[str, Any],
    *,
    thresholds: Sequence[ThresholdResult] = (),
    workers: Mapping[str, StatsSnapshot] | None = None,
    journeys: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write every report into ``directory`` (created if needed); returns kind -> path.

    ``meta`` describes the run (scenario, seed, start, end, target, settings); secrets in it
    are masked. ``workers`` adds a row per worker process; ``journeys``
    (:meth:`flowengine.journeys.JourneysResult.to_dict`) the journey view and
    ``journeys.csv`` (kind ``journeys_csv``).
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    report = build_report(snapshot, meta, thresholds=thresholds, workers=workers, journeys=journeys)
    paths = {
        "json": write_json(folder / FILE_NAMES["json"], report),
        "steps_csv": write_steps_csv(folder / FILE_NAMES["steps_csv"], report),
        "series_csv": write_series_csv(folder / FILE_NAMES["series_csv"], report),
        "html": write_html(folder / FILE_NAMES["html"], report),
    }
    if journeys is not None:
        paths["journeys_csv"] = write_journeys_csv(folder / JOURNEYS_CSV, report)
    return paths
