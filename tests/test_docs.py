"""The README's commands and example work, and every shipped scenario validates."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from flowengine.spec import load_scenario

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    """The first code block: one command runs the quickstart, one runs the tests."""
    first = _blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    assert first[0].endswith("flowengine run flows/quickstart.yaml")
    assert first[1].endswith("pytest")
    assert (ROOT / ".ci" / "run").read_text().count(".venv/bin/pytest") == 1


@pytest.mark.slow
def test_readme_library_example_runs() -> None:
    """The Python example in the README runs as written and logs in twice."""
    example = _blocks("python")[0]
    result = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "success enrolled"
    assert lines[1].startswith("success [") and "grant:mfa-recovery-code" in lines[1]


SCENARIOS = sorted(p for p in ROOT.glob("flows/**/*.yaml") if "tenants" not in p.parts)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_scenarios_validate(path: Path) -> None:
    """Every scenario in flows/ loads (tenant files are checked by the emulator's tests)."""
    scenario = load_scenario(path)
    assert scenario.load is not None or scenario.journeys
