"""`flowengine run` as a user runs it: quickstart, exit codes, Ctrl-C and SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowengine.credstore import SQLiteCredentials
from flowengine.exitcodes import ExitCode

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def flowengine(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run the flowengine command from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "flowengine", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_quickstart_runs_every_factor_then_challenges(tmp_path: Path) -> None:
    """The README's main command: 500 users, every factor, reports, exit 0; then challenges."""
    store = f"sqlite:///{tmp_path / 'creds.db'}"
    first = flowengine(
        "run", "flows/quickstart.yaml", "--report", str(tmp_path / "r1"), "--credentials", store
    )
    assert first.returncode == ExitCode.OK, first.stderr[-2000:]
    assert "flows" in first.stderr and "flows/s" in first.stderr, "progress lines while running"
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    for name in ("report.html", "steps.csv", "series.csv"):
        assert (tmp_path / "r1" / name).stat().st_size > 0
    assert report["meta"]["enrolled_in_run"] == 500
    assert report["summary"]["succeeded"] >= 500 and report["summary"]["failed"] == 0
    steps = {step["name"] for step in report["steps"]}
    assert {"associate", "grant:mfa-otp", "grant:mfa-oob", "push_wait"} <= steps
    second = flowengine(
        "run", "flows/quickstart.yaml", "--report", str(tmp_path / "r2"), "--credentials", store
    )
    assert second.returncode == ExitCode.OK, second.stderr[-2000:]
    again = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert again["meta"]["enrolled_in_run"] == 0
    steps = {step["name"] for step in again["steps"]}
    assert {"challenge", "grant:mfa-recovery-code"} <= steps and "associate" not in steps


def test_failed_threshold_exits_with_its_code(tmp_path: Path) -> None:
    """A threshold that cannot hold: exit 99 and a FAIL line."""
    scenario = write(
        tmp_path / "strict.yaml",
        "users: {pattern: 'user{n}@example.test', password: 'Passw0rd!{n}', count: 20}\n"
        "factors: [email]\nload: {model: closed, users: 5, iterations: 10}\n"
        "thresholds: ['p99(flow) < 1ms']\ncredentials: memory\n",
    )
    result = flowengine("run", str(scenario), "--no-report")
    assert result.returncode == ExitCode.THRESHOLDS_FAILED
    assert "FAIL p99(flow) < 1ms" in result.stdout


def test_broken_scenario_is_one_clear_error(tmp_path: Path) -> None:
    """A wrong value: exit 2 and one line naming the file, the key and what was expected."""
    scenario = write(
        tmp_path / "broken.yaml", "load: {model: closed, users: many, iterations: 3}\n"
    )
    result = flowengine("run", str(scenario))
    assert result.returncode == ExitCode.BAD_INPUT
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2, result.stderr
    assert "broken.yaml" in result.stderr and "load.users" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_scenario_file_is_bad_input(tmp_path: Path) -> None:
    """A scenario that does not exist: exit 2 naming it."""
    result = flowengine("run", str(tmp_path / "nope.yaml"))
    assert result.returncode == ExitCode.BAD_INPUT
    assert "nope.yaml" in result.stderr


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> list[str]:
    """stderr lines up to the first matching ``pattern`` (bounded in time)."""
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no {pattern!r} within {timeout} s: {''.join(lines)[-2000:]}")


def test_sigint_stops_within_grace_and_writes_partial_reports(tmp_path: Path) -> None:
    """Ctrl-C mid-run: exit 130 within the grace period, with complete partial reports."""
    scenario = write(
        tmp_path / "long.yaml",
        "users: {pattern: 'user{n}@example.test', password: 'Passw0rd!{n}', count: 200}\n"
        "factors: [email]\nload: {model: closed, users: 20, duration: 60s}\ncredentials: memory\n",
    )
    report = tmp_path / "partial"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flowengine",
            "run",
            str(scenario),
            "--report",
            str(report),
            "--grace",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        _read_until(process, r"\d+ flows", timeout=60)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
        assert process.returncode == ExitCode.INTERRUPTED
        assert time.monotonic() - sent < 10
    data = json.loads((report / "report.json").read_text())
    assert data["meta"]["interrupted"] is True
    assert (report / "report.html").stat().st_size > 0
    summary = data["summary"]
    assert summary["started"] > 0 and summary["in_flight"] == 0
    assert summary["started"] == summary["succeeded"] + summary["failed"] + summary["cancelled"]


@pytest.fixture
def emulator() -> Iterator[str]:
    """A separate `flowengine emulator` process, so that killing the runner keeps its state."""
    with subprocess.Popen(
        [sys.executable, "-m", "flowengine", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            match = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
            assert match
            yield match.group(0)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)


def _emulator_user(url: str, username: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_emulator/users/{username}", timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def _killed_run(
    url: str, tmp_path: Path, factor: str, after: str, seen: list[str] | None = None
) -> set[str]:
    """Run until ``after`` steps completed for 30 users, SIGKILL it; the users seen."""
    scenario = write(
        tmp_path / f"{factor}.yaml",
        f"target: {{base_url: '{url}', client_id: flowengine, client_secret: '${{SECRET}}',"
        " audience: 'https://api.example.test/'}\n"
        "users: {pattern: 'user{n}@example.test', password: 'Passw0rd!{n}', count: 400}\n"
        f"factors: ['{factor}']\nload: {{model: closed, users: 10, duration: 60s}}\n"
        f"credentials: 'sqlite:///{tmp_path / 'creds.db'}'\n",
    )
    done: set[str] = set()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flowengine",
            "run",
            str(scenario),
            "--no-report",
            "--no-live",
            "--log-level",
            "debug",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SECRET": "flowengine-secret"},
    ) as process:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while len(done) < 30 and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            if seen is not None:
                seen.append(line)
            match = re.search(rf"login\.step .*outcome=ok step={re.escape(after)} user=(\S+)", line)
            if match:
                done.add(match.group(1))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    assert len(done) >= 30
    return done


def test_sigkill_loses_no_learned_credential(emulator: str, tmp_path: Path) -> None:
    """Killed mid-run: every OTP secret and rotated recovery code a step obtained is stored."""
    enrolled = _killed_run(emulator, tmp_path, "otp", "associate")
    with SQLiteCredentials(tmp_path / "creds.db") as store:
        for username in enrolled:
            record = store.get(username)
            secrets = {
                a.get("secret") for a in _emulator_user(emulator, username)["authenticators"]
            }
            assert record is not None and record.otp_secret in secrets, username
    lines: list[str] = []
    rotated = _killed_run(emulator, tmp_path, "recovery-code", "grant:mfa-recovery-code", lines)
    with SQLiteCredentials(tmp_path / "creds.db") as store:
        for username in rotated:
            record = store.get(username)
            assert record is not None
            # On a mismatch, say what the killed run did for that user (no secret is logged).
            history = "".join(line for line in lines if f"user={username}" in line)
            assert record.recovery_code == _emulator_user(emulator, username)["recovery_code"], (
                f"{username}:\n{history}"
            )
