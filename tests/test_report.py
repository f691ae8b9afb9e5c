"""Reports: JSON, CSV and the offline HTML page, all showing the same figures, no secrets."""

from __future__ import annotations

import csv
import io
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from flowengine import jsonio
from flowengine.clock import ManualClock
from flowengine.report import FILE_NAMES, build_report, write_reports
from flowengine.report.csv import SERIES_FIELDS, series_csv, steps_csv
from flowengine.report.html import SUMMARY_FIELDS, render_html
from flowengine.report.json import STEP_FIELDS
from flowengine.stats import CANCELLED, OK, Stats, StatsSnapshot
from flowengine.thresholds import evaluate

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.c2lnbmF0dXJl"
SECRETS = ("flowengine-secret", "Passw0rd!7", JWT)
META: dict[str, Any] = {
    "scenario": "quickstart",
    "seed": 42,
    "start": "2026-11-28T03:00:00Z",
    "end": "2026-11-28T03:00:12Z",
    "target": {"domain": "http://127.0.0.1:8080", "client_secret": "flowengine-secret"},
    "settings": {"users": 50, "password": "Passw0rd!7", "note": f"token {JWT}"},
}


def _snapshot(clock: ManualClock | None = None, seconds: int = 12) -> StatsSnapshot:
    """A run of ``seconds`` seconds with a quiet gap at 5 s, errors, retries, a cancel."""
    clock = clock or ManualClock()
    stats = Stats(clock=clock.monotonic)
    for second in range(seconds):
        flows = 0 if second == 5 else 20 + 5 * second
        for n in range(flows):
            stats.record_start()
            stats.record_step("password", 0.004 + 0.0001 * n, OK)
            stats.record_step("challenge", 0.002, OK)
            stats.record_step("grant:mfa-otp", 0.003 + 0.0002 * n, OK if n % 9 else "invalid_code")
            outcome = "success" if n % 9 else "failed"
            stats.record_flow(0.010 + 0.001 * n + 0.002 * second, outcome, "invalid_code")
            clock.advance(1.0 / flows)
        if flows == 0:
            clock.advance(1.0)
        stats.record_retry("password")
    stats.record_missed_start()
    stats.record_start()
    stats.record_flow(0.5, CANCELLED)
    return stats.snapshot()


def _report(**kwargs: Any) -> dict[str, Any]:
    snapshot = _snapshot()
    results = evaluate(["p95(flow) < 800ms", "error_rate < 1%"], snapshot)
    return build_report(snapshot, META, thresholds=results, **kwargs)


def test_summary_counts_add_up_and_match_the_snapshot() -> None:
    """The summary has the snapshot's totals, and started = succeeded + failed + cancelled."""
    snapshot = _snapshot()
    summary = build_report(snapshot, META)["summary"]
    assert summary["started"] == summary["succeeded"] + summary["failed"] + summary["cancelled"]
    assert summary["flows_per_second"] == round(snapshot.flows_per_second, 3)
    assert (summary["missed_starts"], summary["retries"], summary["cancelled"]) == (1, 12, 1)


def test_step_rows_have_every_field_in_login_order() -> None:
    """Rows start with the whole flow, then steps in login order, with every column."""
    rows = _report()["steps"]
    assert [r["name"] for r in rows] == ["flow", "password", "challenge", "grant:mfa-otp"]
    assert all(list(r) == list(STEP_FIELDS) for r in rows)


def test_step_latencies_are_the_snapshot_percentiles_in_ms() -> None:
    """p50..max in a row are the snapshot's values in milliseconds, to the microsecond."""
    snapshot = _snapshot()
    (flow,) = [r for r in build_report(snapshot, META)["steps"] if r["name"] == "flow"]
    assert flow["p99_ms"] == round(snapshot.percentile("flow", 99) * 1000, 3)  # type: ignore[operator]
    assert flow["max_ms"] == round(snapshot.flow.max * 1000, 3)  # type: ignore[operator]
    assert flow["errors"] == snapshot.failed
    assert flow["retries"] == snapshot.retries


def test_report_keeps_a_snapshot_that_round_trips() -> None:
    """The JSON report's raw snapshot loads back into an equal StatsSnapshot."""
    snapshot = _snapshot()
    report = jsonio.loads(jsonio.dumps(build_report(snapshot, META)))
    assert StatsSnapshot.from_dict(report["snapshot"]) == snapshot


def test_meta_secrets_are_masked_but_step_names_are_not() -> None:
    """Secrets in meta are masked by name and pattern; the 'password' step stays intact."""
    report = _report()
    text = jsonio.dumps_text(report)
    assert not any(secret in text for secret in SECRETS)
    assert report["meta"]["target"]["client_secret"] == "***"
    assert "password" in report["snapshot"]["steps"]


def test_thresholds_results_and_verdict_are_reported() -> None:
    """Each threshold result is listed, and 'passed' is false when one failed."""
    report = _report()
    assert [t["passed"] for t in report["thresholds"]] == [True, False]
    assert report["passed"] is False


def test_series_is_dense_with_quiet_intervals_as_zero() -> None:
    """Every interval appears, a quiet one with zero flows and no latency."""
    series = _report()["series"]
    assert [row["t_s"] for row in series] == [float(n) for n in range(13)]
    assert (series[5]["succeeded"], series[5]["p50_ms"]) == (0, None)
    assert series[1]["flows_per_second"] == 25.0


def test_workers_get_a_row_each() -> None:
    """Per-worker snapshots become rows named after the worker."""
    workers = {"w0": _snapshot(), "w1": _snapshot(seconds=3)}
    rows = _report(workers=workers)["workers"]
    assert [(r["worker"], r["started"]) for r in rows] == [
        ("w0", workers["w0"].started),
        ("w1", workers["w1"].started),
    ]


def test_steps_csv_rows_equal_the_json_rows() -> None:
    """steps.csv has a header and one row per step, with the JSON's values."""
    report = _report()
    rows = list(csv.DictReader(io.StringIO(steps_csv(report))))
    assert list(rows[0]) == ["step", *STEP_FIELDS[1:]]
    for row, expected in zip(rows, report["steps"], strict=True):
        assert row["step"] == expected["name"]
        assert float(row["p95_ms"]) == expected["p95_ms"]
        assert int(row["count"]) == expected["count"]


def test_series_csv_rows_equal_the_json_series() -> None:
    """series.csv has one row per interval; no data is an empty cell."""
    report = _report()
    rows = list(csv.DictReader(io.StringIO(series_csv(report))))
    assert list(rows[0]) == list(SERIES_FIELDS)
    assert len(rows) == len(report["series"])
    assert rows[5]["p99_ms"] == ""
    assert float(rows[3]["p99_ms"]) == report["series"][3]["p99_ms"]


def test_csv_does_not_let_a_step_name_run_as_a_formula() -> None:
    """A step name starting with '=' is quoted so spreadsheets show it as text."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_step("=HYPERLINK()", 0.1, OK)
    text = steps_csv(build_report(stats.snapshot(), {}))
    assert "'=HYPERLINK()" in text


def test_write_reports_writes_every_file_atomically(tmp_path: Path) -> None:
    """write_reports creates the directory and the four files, leaving no temporary file."""
    paths = write_reports(tmp_path / "out", _snapshot(), META)
    assert {k: p.name for k, p in paths.items()} == FILE_NAMES
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILE_NAMES.values())


def test_no_report_file_contains_a_secret(tmp_path: Path) -> None:
    """No secret from meta, a step name or an error kind reaches any report file."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_step(f"Bearer {JWT}", 0.1, OK)
    stats.record_flow(0.1, "failed", f"bad {JWT}")
    paths = write_reports(tmp_path, stats.snapshot(), META)
    for path in paths.values():
        text = path.read_text(encoding="utf-8")
        assert not any(secret in text for secret in SECRETS), path.name


def test_html_is_self_contained() -> None:
    """The page inlines plotly.js and links to nothing outside itself."""
    page = render_html(_report())
    assert "<script src=" not in page
    assert 'src="http' not in page
    assert "<link" not in page
    assert "Plotly.newPlot" in page
    assert len(page) > 1_000_000  # plotly.js itself


def test_html_escapes_text_from_the_run() -> None:
    """A hostile step name is shown as text, never as markup or script."""
    stats = Stats(clock=ManualClock().monotonic)
    stats.record_step("</script><script>alert(1)</script>", 0.1, OK)
    page = render_html(build_report(stats.snapshot(), {"scenario": "<b>x</b>"}))
    assert "<script>alert(1)" not in page
    assert "<b>x</b>" not in page


class _Figures(HTMLParser):
    """Collects the figure cells of the report page (data-summary, data-step/data-field)."""

    def __init__(self) -> None:
        super().__init__()
        self.summary: dict[str, str] = {}
        self.steps: dict[tuple[str, str], str] = {}
        self.svg_charts = 0
        self._open: tuple[str, ...] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "svg" and "main-svg" in (attr.get("class") or ""):
            self.svg_charts += 1
        if attr.get("data-summary"):
            self._open = ("summary", str(attr["data-summary"]))
        elif tag == "td" and attr.get("data-step") and attr.get("data-field"):
            self._open = ("step", str(attr["data-step"]), str(attr["data-field"]))

    def handle_data(self, data: str) -> None:
        if self._open is None:
            return
        if self._open[0] == "summary":
            self.summary[self._open[1]] = data.strip()
        else:
            self.steps[(self._open[1], self._open[2])] = data.strip()
        self._open = None


def _parse(page: str) -> _Figures:
    parser = _Figures()
    parser.feed(page)
    return parser


def _same(shown: str, value: Any) -> bool:
    return shown == "–" if value is None else float(shown) == value


def _assert_figures_equal_json(figures: _Figures, report: dict[str, Any]) -> None:
    assert set(figures.summary) == {field for field, _ in SUMMARY_FIELDS}
    for field, shown in figures.summary.items():
        assert _same(shown, report["summary"][field]), field
    expected = {(r["name"], f): r[f] for r in report["steps"] for f in STEP_FIELDS[1:]}
    assert set(figures.steps) == set(expected)
    for key, shown in figures.steps.items():
        assert _same(shown, expected[key]), key


def test_html_figures_equal_the_json_report() -> None:
    """Every summary and step cell in the page shows the JSON report's value."""
    report = _report()
    _assert_figures_equal_json(_parse(render_html(report)), report)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no host resolves
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=15000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


def _png_facts(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (filtered) pixel rows of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, width, height, idat = 8, 0, 0, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.chromium
@pytest.mark.slow
def test_html_report_screenshot_in_chromium_is_not_blank(tmp_path: Path) -> None:
    """Headless Chromium renders the page offline into a full, non-blank screenshot."""
    paths = write_reports(tmp_path / "report", _snapshot(), META, thresholds=())
    shot = tmp_path / "report.png"
    _run_chromium(tmp_path, "--window-size=1280,1800", f"--screenshot={shot}",
                  paths["html"].as_uri())  # fmt: skip
    width, height, pixels = _png_facts(shot.read_bytes())
    assert (width, height) == (1280, 1800)
    assert shot.stat().st_size > 50_000  # a blank page of this size is ~9 KB
    assert len(set(pixels)) > 100


@pytest.mark.chromium
@pytest.mark.slow
def test_html_report_in_chromium_draws_charts_and_shows_the_json_figures(tmp_path: Path) -> None:
    """After its scripts ran, the page has its four plotly charts and the JSON's figures."""
    snapshot = _snapshot()
    results = evaluate(["p95(flow) < 800ms", "error_rate < 1%"], snapshot)
    paths = write_reports(tmp_path / "report", snapshot, META, thresholds=results)
    dom = _run_chromium(tmp_path, "--dump-dom", paths["html"].as_uri()).stdout.decode()
    figures = _parse(dom)
    assert figures.svg_charts >= 4
    _assert_figures_equal_json(figures, jsonio.loads(paths["json"].read_bytes()))
