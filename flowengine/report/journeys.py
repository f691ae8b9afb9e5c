"""The journey view of the reports: ``journeys.csv`` and the HTML tables.

Both are rendered from the JSON report's ``journeys`` part
(:meth:`flowengine.journeys.JourneysResult.to_dict`): a CSV row per (journey, user, step),
and per journey an HTML table with a row per user and a column per step, each cell
coloured by its result (pass green, fail red, skipped grey) with the failing message on
hover and listed below the table. Cells carry ``data-journey``, ``data-user``,
``data-step`` and ``data-status`` for tests and tools.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from flowengine import jsonio
from flowengine.log import mask_secrets
from flowengine.report.json import write_text

__all__ = [
    "JOURNEYS_CSS",
    "JOURNEYS_CSV",
    "JOURNEY_FIELDS",
    "MAX_HTML_USERS",
    "journeys_csv",
    "journeys_html",
    "journeys_verdict",
    "write_journeys_csv",
]

JOURNEYS_CSV: Final = "journeys.csv"
"""The file name of the journey CSV in a report directory."""
#: Columns of ``journeys.csv``.
JOURNEY_FIELDS: Final = (
    "journey",
    "user",
    "step",
    "label",
    "kind",
    "status",
    "runs",
    "max_ms",
    "expected",
    "actual",
    "iteration",
    "message",
)
MAX_HTML_USERS: Final = 1000
"""Rows per journey table (failed users first); the CSV and JSON have every user."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
JOURNEYS_CSS: Final = """
.journey { margin: 18px 0 8px; font-size: 15px; }
.jtable { overflow-x: auto; }
.jtable td { text-align: center; font-weight: 600; font-size: 12px; }
.jtable th.col { text-align: center; white-space: normal; min-width: 70px; font-size: 12px; }
td.jpass { color: #166534; background: #dcfce7; }
td.jfail { color: #991b1b; background: #fee2e2; cursor: help; }
td.jskipped { color: #6b7280; background: #f1f5f9; }
ul.failures { margin: 8px 0 0; padding-left: 20px; color: #991b1b; }
ul.failures li { white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
ul.failures pre { color: var(--fg); background: #f8fafc; border: 1px solid var(--line);
                  padding: 6px 8px; margin: 4px 0; white-space: pre-wrap; }
"""
"""Styles of the journey tables (the HTML report puts them in its head)."""


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        value = mask_secrets(value)
        if value.startswith(_FORMULA_START):
            return "'" + value  # a spreadsheet must not run a step label as a formula
    return value


def journeys_csv(report: Mapping[str, Any]) -> str:
    """One row per (journey, user, step), in the JSON's order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JOURNEY_FIELDS)
    for journey in (report.get("journeys") or {}).get("journeys", []):
        for user in journey["users"]:
            for step in user["steps"]:
                seconds = step.get("seconds")
                row = {
                    **step,
                    "journey": journey["name"],
                    "user": user["user"],
                    "step": step["path"],
                    "max_ms": None if seconds is None else round(seconds * 1000.0, 3),
                }
                writer.writerow([_cell(row.get(field)) for field in JOURNEY_FIELDS])
    return out.getvalue()


def write_journeys_csv(path: Path, report: Mapping[str, Any]) -> Path:
    """Write :func:`journeys_csv` to ``path``."""
    return write_text(path, journeys_csv(report))


def _text(value: Any) -> str:
    return html.escape(str(mask_secrets(str(value))))


def _attr(value: Any) -> str:
    return html.escape(str(mask_secrets(str(value))), quote=True)


def _table(journey: Mapping[str, Any]) -> str:
    name = journey["name"]
    head = "".join(
        f'<th class="col" title="{_attr(c["path"])}" data-step="{_attr(c["path"])}">'
        f"{'↳ ' * c['depth']}{_text(c['label'])}</th>"
        for c in journey["steps"]
    )
    users = sorted(journey["users"], key=lambda u: u["status"] != "fail")
    rows = []
    failures = []
    for user in users[:MAX_HTML_USERS]:
        cells = []
        for step in user["steps"]:
            status = step["status"]
            message = step.get("message")
            title = message or step.get("actual") or status
            runs = f" ×{step['runs']}" if step.get("runs", 0) > 1 else ""
            cells.append(
                f'<td class="j{status}" data-journey="{_attr(name)}" '
                f'data-user="{_attr(user["user"])}" data-step="{_attr(step["path"])}" '
                f'data-status="{status}" title="{_attr(title)}">{status.upper()}{runs}</td>'
            )
            if message:
                reply = jsonio.dumps_text(step.get("reply"), indent=True)
                failures.append(
                    f'<li data-failure="{_attr(step["path"])}">{_text(message)}'
                    f"<details><summary>reply</summary><pre>{_text(reply)}</pre></details></li>"
                )
        rows.append(
            f'<tr data-journey="{_attr(name)}" data-user="{_attr(user["user"])}">'
            f"<th>{_text(user['user'])}</th>{''.join(cells)}</tr>"
        )
    more = ""
    if len(users) > MAX_HTML_USERS:
        more = (
            f'<p class="sub">{len(users) - MAX_HTML_USERS} more users (passed first hidden);'
            " every user is in journeys.csv and report.json.</p>"
        )
    verdict = "pass" if journey["passed"] else "fail"
    failed = sum(u["status"] == "fail" for u in journey["users"])
    description = journey.get("description")
    return (
        f'<h3 class="journey" data-journey="{_attr(name)}">{_text(name)} '
        f'<span class="verdict {verdict}">{failed} of {len(journey["users"])} users failed'
        f"</span></h3>"
        + (f'<p class="sub">{_text(description)}</p>' if description else "")
        + f'<div class="jtable"><table><thead><tr><th>user</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{more}"
        + (f'<ul class="failures">{"".join(failures)}</ul>' if failures else "")
    )


def journeys_html(report: Mapping[str, Any]) -> str:
    """The ``<section id="journeys">`` of the HTML report ('' without journeys)."""
    part = report.get("journeys")
    if not part:
        return ""
    tables = "".join(_table(journey) for journey in part["journeys"])
    return (
        f'<section id="journeys"><h2>Journeys</h2><p class="sub" data-seed="{_attr(part["seed"])}">'
        f"seed {_text(part['seed'])} · {part['users']} users: {part['users_passed']} passed,"
        f" {part['users_failed']} failed, {part['users_skipped']} skipped</p>{tables}</section>"
    )


def journeys_verdict(report: Mapping[str, Any]) -> str:
    """The header's badge: whether every journey expectation held ('' without journeys)."""
    part = report.get("journeys")
    if not part:
        return ""
    failed, users = part["users_failed"], part["users"]
    if part["passed"]:
        return (
            f'<span class="verdict pass" data-verdict-journeys="passed">All {users} journey'
            " users met every expectation</span>"
        )
    return (
        f'<span class="verdict fail" data-verdict-journeys="failed">{failed} of {users}'
        " journey users failed an expectation</span>"
    )
