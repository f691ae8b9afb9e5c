"""One self-contained HTML report (plotly, inlined: it opens offline), from the JSON report.

Charts: throughput over time, flow latency percentiles over time, the latency distribution
of each step (percentile curves) and errors by kind; tables: summary, thresholds, journeys
(:mod:`flowengine.report.journeys`), steps, errors, workers and the run's metadata. Every
figure cell carries ``data-`` attributes (``data-summary``, or ``data-step`` and
``data-field``) naming the JSON value it shows, so tests and tools can read them back. All
text is HTML-escaped and secret-masked.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import plotly.graph_objects as go

from flowengine import jsonio
from flowengine.log import mask_secrets
from flowengine.report.journeys import JOURNEYS_CSS, journeys_html, journeys_verdict
from flowengine.report.json import STEP_FIELDS, write_text

__all__ = ["SUMMARY_FIELDS", "render_html", "write_html"]

#: Summary figures shown, in order, with their labels.
SUMMARY_FIELDS: Final = (
    ("duration_s", "Duration (s)"),
    ("started", "Flows started"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("in_flight", "Still in flight"),
    ("missed_starts", "Missed starts"),
    ("retries", "Retries"),
    ("flows_per_second", "Flows per second"),
    ("error_rate_pct", "Error rate (%)"),
)
_STEP_LABELS: Final = {
    "name": "step",
    "count": "count",
    "ok": "ok",
    "errors": "errors",
    "cancelled": "cancelled",
    "retries": "retries",
    "error_rate_pct": "error %",
    "min_ms": "min",
    "mean_ms": "mean",
    "p50_ms": "p50",
    "p90_ms": "p90",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "p99_9_ms": "p99.9",
    "max_ms": "max",
}
_COLORS: Final = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777")
_CSS: Final = """
:root { --fg: #1f2933; --muted: #616e7c; --line: #e4e7eb; --ok: #15803d; --bad: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #f5f7fa; }
main { max-width: 1280px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 0 0 12px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 16px 20px; margin: 16px 0; }
.sub { color: var(--muted); margin: 0; }
.verdict { display: inline-block; font-weight: 600; padding: 4px 10px; border-radius: 6px;
           margin-top: 8px; }
.pass { color: var(--ok); background: #dcfce7; } .fail { color: var(--bad); background: #fee2e2; }
.none { color: var(--muted); background: #eef0f3; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { color: var(--muted); font-weight: 600; }
tr.flow th, tr.flow td { font-weight: 700; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.chart { border: 1px solid var(--line); border-radius: 6px; min-height: 380px; min-width: 0;
         overflow: hidden; }
.meta td { text-align: left; white-space: normal; word-break: break-word; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin: 24px 0; }
"""


def _text(value: Any) -> str:
    """Escaped, secret-masked text."""
    return html.escape(str(mask_secrets(str(value))))


def _number(value: Any) -> str:
    """A figure exactly as in the JSON report (floats with 3 decimals), or an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _text(value)


def _attr(value: Any) -> str:
    return html.escape(str(mask_secrets(str(value))), quote=True)


def _summary(report: Mapping[str, Any]) -> str:
    summary = report["summary"]
    cards = "".join(
        f'<div class="card"><div class="label">{_text(label)}</div>'
        f'<div class="value" data-summary="{field}">{_number(summary.get(field))}</div></div>'
        for field, label in SUMMARY_FIELDS
    )
    return f'<section id="summary"><h2>Summary</h2><div class="cards">{cards}</div></section>'


def _verdict(report: Mapping[str, Any]) -> str:
    results = report["thresholds"]
    if not results:
        return '<span class="verdict none" data-verdict="none">No thresholds</span>'
    failed = sum(not r["passed"] for r in results)
    if failed:
        return (
            f'<span class="verdict fail" data-verdict="failed">{failed} of {len(results)} '
            "thresholds failed</span>"
        )
    return (
        f'<span class="verdict pass" data-verdict="passed">All {len(results)} thresholds '
        "passed</span>"
    )


def _thresholds(report: Mapping[str, Any]) -> str:
    results = report["thresholds"]
    if not results:
        return ""
    rows = []
    for n, r in enumerate(results):
        unit = _text(r["unit"])
        verdict = "pass" if r["passed"] else "fail"
        rows.append(
            f'<tr data-threshold="{n}"><td>{_text(r["expression"])}</td>'
            f'<td data-field="observed">{_number(r["observed"])}</td><td>{unit}</td>'
            f'<td data-field="limit">{_number(r["limit"])}</td>'
            f'<td class="{verdict}" data-field="passed">{verdict.upper()}</td></tr>'
        )
    head = "<tr><th>threshold</th><th>observed</th><th>unit</th><th>limit</th><th>result</th></tr>"
    return (
        f'<section id="thresholds"><h2>Thresholds</h2><table><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _steps(report: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{_STEP_LABELS[f]}</th>" for f in STEP_FIELDS)
    rows = []
    for row in report["steps"]:
        name = _attr(row["name"])
        cells = "".join(
            f'<td data-step="{name}" data-field="{field}">{_number(row[field])}</td>'
            for field in STEP_FIELDS[1:]
        )
        css = ' class="flow"' if row["name"] == "flow" else ""
        rows.append(f'<tr{css} data-step="{name}"><th>{_text(row["name"])}</th>{cells}</tr>')
    return (
        '<section id="steps"><h2>Steps (latencies in ms)</h2><table><thead><tr>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _errors(report: Mapping[str, Any]) -> str:
    errors = report["errors"]
    if not errors:
        body = '<p class="sub">No failed flows.</p>'
    else:
        rows = "".join(
            f'<tr><td>{_text(e["kind"])}</td><td data-error="{_attr(e["kind"])}">'
            f"{_number(e['count'])}</td></tr>"
            for e in errors
        )
        body = f"<table><thead><tr><th>kind</th><th>flows</th></tr></thead>{rows}</table>"
    return f'<section id="errors"><h2>Errors by kind</h2>{body}</section>'


def _workers(report: Mapping[str, Any]) -> str:
    workers = report.get("workers") or []
    if not workers:
        return ""
    labels = {
        "started": "started",
        "succeeded": "succeeded",
        "failed": "failed",
        "missed_starts": "missed starts",
        "flows_per_second": "flows/s",
        "p50_ms": "p50 ms",
        "p95_ms": "p95 ms",
        "p99_ms": "p99 ms",
    }
    fields = tuple(labels)
    head = "<th>worker</th>" + "".join(f"<th>{labels[f]}</th>" for f in fields)
    rows = "".join(
        f"<tr><td>{_text(w['worker'])}</td>"
        + "".join(f"<td>{_number(w.get(f))}</td>" for f in fields)
        + "</tr>"
        for w in workers
    )
    return (
        f'<section id="workers"><h2>Workers</h2><table><thead><tr>{head}</tr></thead>'
        f"{rows}</table></section>"
    )


def _flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def _meta(report: Mapping[str, Any]) -> str:
    rows = []
    for key, value in _flatten(report.get("meta") or {}):
        shown = value if isinstance(value, str) else jsonio.dumps_text(value)
        rows.append(f"<tr><th>{_text(key)}</th><td>{_text(shown)}</td></tr>")
    if not rows:
        return ""
    return (
        '<section id="meta"><h2>Run</h2><table class="meta">'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.02},
        "template": "plotly_white",
        "height": 380,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.2},
        "autosize": True,
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "colorway": list(_COLORS),
        **extra,
    }


def _per_second(rows: Sequence[Mapping[str, Any]], field: str) -> list[float]:
    return [round(r[field] / r["seconds"], 3) if r["seconds"] else 0.0 for r in rows]


def _throughput(report: Mapping[str, Any]) -> go.Figure:
    rows = report["series"]
    x = [r["t_s"] for r in rows]
    figure = go.Figure(layout=_layout("Throughput", "time (s)", "per second"))
    figure.add_scatter(x=x, y=[r["flows_per_second"] for r in rows], name="completed flows/s")
    figure.add_scatter(x=x, y=_per_second(rows, "failed"), name="failed flows/s")
    figure.add_scatter(x=x, y=_per_second(rows, "started"), name="started/s", line_dash="dot")
    if any(r["missed_starts"] for r in rows):
        figure.add_scatter(x=x, y=_per_second(rows, "missed_starts"), name="missed starts/s")
    return figure


def _latency_over_time(report: Mapping[str, Any]) -> go.Figure:
    rows = report["series"]
    x = [r["t_s"] for r in rows]
    figure = go.Figure(layout=_layout("Flow latency over time", "time (s)", "ms"))
    for field, label in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p95_ms", "p95"),
                         ("p99_ms", "p99")):  # fmt: skip
        figure.add_scatter(x=x, y=[r[field] for r in rows], name=label, connectgaps=False)
    figure.add_scatter(
        x=x, y=[r["max_ms"] for r in rows], name="max", visible="legendonly", line_dash="dot"
    )
    return figure


def _distribution(report: Mapping[str, Any]) -> go.Figure:
    figure = go.Figure(
        layout=_layout("Latency distribution per step", "percentile", "ms (log scale)")
    )
    figure.update_yaxes(type="log", rangemode="normal")
    figure.update_xaxes(type="category")
    for name, points in report["distribution"].items():
        labels = [f"p{p:g}" for p, _ in points]
        values = [max(v, 0.001) if v is not None else None for _, v in points]
        figure.add_scatter(
            x=labels, y=values, name=str(mask_secrets(name)), mode="lines+markers",
            line_width=3 if name == "flow" else 1.5,
        )  # fmt: skip
    return figure


def _errors_chart(report: Mapping[str, Any]) -> go.Figure:
    errors = report["errors"]
    figure = go.Figure(layout=_layout("Errors by kind", "failed flows", ""))
    if errors:
        kinds = [str(mask_secrets(e["kind"])) for e in reversed(errors)]
        figure.add_bar(x=[e["count"] for e in reversed(errors)], y=kinds, orientation="h",
                       marker_color=_COLORS[3])  # fmt: skip
        figure.update_layout(height=max(380, 60 + 28 * len(errors)), bargap=0.4)
    else:
        figure.add_annotation(text="no failed flows", showarrow=False, font={"size": 16},
                              xref="paper", yref="paper", x=0.5, y=0.5)  # fmt: skip
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
    return figure


def _charts(report: Mapping[str, Any]) -> str:
    figures = (
        ("chart-throughput", _throughput(report)),
        ("chart-latency", _latency_over_time(report)),
        ("chart-distribution", _distribution(report)),
        ("chart-errors", _errors_chart(report)),
    )
    parts = []
    for n, (div_id, figure) in enumerate(figures):
        snippet = figure.to_html(
            full_html=False,
            include_plotlyjs=n == 0,  # plotly.js inlined once: the file opens offline
            div_id=div_id,
            config={"displaylogo": False, "responsive": True},
        )
        parts.append(f'<div class="chart">{snippet}</div>')
    return (
        f'<section id="charts"><h2>Charts</h2><div class="charts">{"".join(parts)}</div></section>'
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole HTML page for a report dict (see :func:`flowengine.report.json.build_report`)."""
    meta = report.get("meta") or {}
    name = meta.get("scenario") or meta.get("name") or "run"
    started = meta.get("start") or meta.get("started_at") or ""
    subtitle = f"started {_text(started)}" if started else ""
    # A run of journeys only has no flows to chart: its page is the journey tables.
    load = not report.get("journeys") or meta.get("load", "") is not None
    summary = _summary(report) if load else ""
    figures = f"{_steps(report)}{_charts(report)}{_errors(report)}" if load else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>flowengine report: {_text(name)}</title><style>{_CSS}{JOURNEYS_CSS}</style></head>"
        f'<body><main><header><h1>flowengine report: <span id="scenario">{_text(name)}</span>'
        f'</h1><p class="sub">{subtitle}</p>{_verdict(report)} {journeys_verdict(report)}'
        f"</header>{summary}{_thresholds(report)}{journeys_html(report)}{figures}"
        f"{_workers(report)}{_meta(report)}"
        f"<footer>{_text(report.get('format', ''))} · generated by flowengine</footer>"
        "</main></body></html>\n"
    )


def write_html(path: Path, report: Mapping[str, Any]) -> Path:
    """Write :func:`render_html` to ``path``."""
    return write_text(path, render_html(report))
