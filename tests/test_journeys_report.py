"""The journey view of a run: JSON, journeys.csv, the HTML table, the summary, the CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from flowengine.exitcodes import BAD_INPUT, ExitCode
from flowengine.journeys import Observed, check, count_enrolled, mfa_token_expiry
from flowengine.replies import Authenticator
from flowengine.run_cli import print_summary
from flowengine.runner import Runner, RunResult
from flowengine.spec import Expectation, LatencyBound, load_scenario
from flowengine.validate_cli import validate_command

ROOT = Path(__file__).resolve().parents[1]
PUSH = ROOT / "flows" / "journeys" / "push-rejected-then-approved.yaml"
REJECTED = "expect: {outcome: failed, error: access_denied}"


def broken_copy(directory: Path, old: str, new: str, source: Path = PUSH) -> Path:
    """A copy of a shipped journey file with ``old`` replaced by ``new``."""
    text = source.read_text()
    assert old in text
    path = directory / source.name
    path.write_text(text.replace(old, new))
    return path


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    """One run of the push journey whose rejected login wrongly expects success."""
    directory = tmp_path_factory.mktemp("failed")
    path = broken_copy(directory, REJECTED, "expect: {outcome: success}")
    reports = directory / "reports"
    result = asyncio.run(Runner(load_scenario(path), report_dir=reports).run())
    return result, reports


def test_json_has_a_result_per_journey_user_and_step(failed_run: tuple[RunResult, Path]) -> None:
    """report.json holds the seed, the failures, and every (journey, user, step)."""
    report = json.loads((failed_run[1] / "report.json").read_text())
    part = report["journeys"]
    assert (part["seed"], part["passed"], part["users"], part["users_failed"]) == (0, False, 3, 3)
    (journey,) = part["journeys"]
    assert [len(user["steps"]) for user in journey["users"]] == [6, 6, 6]
    failure = part["failures"][0]
    assert failure["step"] == "journeys[0].steps[2]" and failure["label"] == "rejected login"
    assert failure["expected"] == "outcome success"
    assert failure["actual"].startswith("outcome failed, error access_denied")
    assert failure["reply"]["error"] == "access_denied"


def test_csv_has_a_row_per_journey_user_and_step(failed_run: tuple[RunResult, Path]) -> None:
    """journeys.csv: one row per (journey, user, step) with its status."""
    text = (failed_run[1] / "journeys.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 * 6
    statuses = [row["status"] for row in rows if row["user"] == "guardian1@example.test"]
    assert statuses == ["pass", "pass", "fail", "skipped", "skipped", "skipped"]
    assert failed_run[0].reports["journeys_csv"].name == "journeys.csv"


def test_html_table_colours_cells_by_result(failed_run: tuple[RunResult, Path]) -> None:
    """report.html: a row per user, a cell per step, classed pass/fail/skipped, message on hover."""
    page = (failed_run[1] / "report.html").read_text()
    user = 'data-user="guardian2@example.test"'
    for n, status in enumerate(("pass", "pass", "fail", "skipped", "skipped", "skipped")):
        cell = f'<td class="j{status}" data-journey="push-rejected-then-approved" {user} '
        assert f'{cell}data-step="journeys[0].steps[{n}]" data-status="{status}"' in page
    assert "expected outcome success; got outcome failed, error access_denied" in page
    assert (
        'data-verdict-journeys="failed"' in page and 'data-failure="journeys[0].steps[2]"' in page
    )


def test_summary_lists_failed_expectations(failed_run: tuple[RunResult, Path]) -> None:
    """The end-of-run summary names the journey, user, step, expected and actual."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_summary(failed_run[0], console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "FAIL push-rejected-then-approved: 0 of 3 users" in text
    assert "user guardian3@example.test, step journeys[0].steps[2] (rejected login)" in text
    assert "expected: outcome success" in text and "actual:   outcome failed" in text


@pytest.mark.slow
def test_cli_exits_98_on_a_failed_expectation(tmp_path: Path) -> None:
    """flowengine run of a journey with a wrong expectation exits 98 and says why."""
    path = broken_copy(tmp_path, REJECTED, "expect: {outcome: success}")
    done = subprocess.run(
        [sys.executable, "-m", "flowengine", "run", str(path), "--no-live", "--no-report"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == int(ExitCode.EXPECTATIONS_FAILED) == 98, done.stderr[-2000:]
    assert "FAILED journey push-rejected-then-approved, user guardian1@example.test" in done.stdout
    assert "expected: outcome success" in done.stdout


def test_validate_accepts_the_shipped_journeys() -> None:
    """flowengine validate passes every file in flows/journeys."""
    files = sorted(str(p) for p in (ROOT / "flows" / "journeys").glob("*.yaml"))
    result = CliRunner().invoke(validate_command, files)
    assert result.exit_code == 0 and result.stdout.count("ok: ") == len(files) == 5


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("- enroll: push", "- enrol: push", "journeys[0].steps[0].enrol: unknown step; did you"),
        ("- enroll: push", "- enroll: pusj", "journeys[0].steps[0].enroll: unknown factor 'pusj'"),
        ("- push: reject", "- push: maybe", "journeys[0].steps[1].push: "),
        (REJECTED, "expect: {outcome: sucess}", "journeys[0].steps[2].expect.outcome: "),
        (REJECTED, "expect: {error: acess_denied}", "did you mean 'access_denied'?"),
    ],
    ids=["step", "factor", "push-answer", "outcome", "error-code"],
)
def test_validate_names_file_and_key_path(tmp_path: Path, old: str, new: str, message: str) -> None:
    """A broken journey gives one error naming the file and the key path; exit 2."""
    path = broken_copy(tmp_path, old, new)
    result = CliRunner().invoke(validate_command, [str(path)])
    assert result.exit_code == BAD_INPUT
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {path}: ") and message in line


def test_count_enrolled_counts_what_a_person_enrolled() -> None:
    """A phone's sms+voice pair and a push with its OTP twin count once; recovery not at all."""
    listed = [
        Authenticator(id="recovery-code|dev_r", authenticator_type="recovery-code", active=True),
        Authenticator(id="sms|dev_a", authenticator_type="oob", active=True, oob_channel="sms"),
        Authenticator(id="voice|dev_a", authenticator_type="oob", active=True, oob_channel="voice"),
        Authenticator(id="push|dev_b", authenticator_type="oob", active=True, oob_channel="auth0"),
        Authenticator(id="totp|dev_c", authenticator_type="otp", active=True),
        Authenticator(id="totp|dev_d", authenticator_type="otp", active=True),
        Authenticator(
            id="email|dev_e", authenticator_type="oob", active=False, oob_channel="email"
        ),
    ]
    assert count_enrolled(listed) == 3


def test_expectation_accepts_the_engines_name_for_an_error() -> None:
    """error: matches Auth0's code or the engine's kind; latency bounds are checked."""
    observed = Observed(outcome="failed", error="invalid_grant", aliases=("invalid_code",))
    assert check(Expectation(outcome="failed", error="invalid_code"), observed)
    assert check(Expectation(outcome="failed", error="invalid_grant"), observed)
    slow = Expectation(outcome="failed", latency=LatencyBound(seconds=0.5))
    assert not check(slow, Observed(outcome="failed", seconds=0.5))


def test_mfa_token_expiry_reads_the_sealed_expiry() -> None:
    """The 6th field of an Iron mfa_token is its expiry in ms; other strings have none."""
    assert mfa_token_expiry("Fe26.2*k*s*iv*ct*1767226200000*hs*mac") == 1767226200.0
    assert mfa_token_expiry("not-a-token") is None
