"""A short soak under faults (the five-minute one is flows/soak.yaml), and tenant overrides."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import attrs
import pytest

from flowengine.runner import Runner
from flowengine.spec import ClosedLoad, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
async def test_short_soak_with_faults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """flows/soak.yaml for 20 s: >= 99.5% succeed, failures classified, counts add up, no leak."""
    soak = load_scenario(ROOT / "flows" / "soak.yaml")
    assert isinstance(soak.load, ClosedLoad)
    short = attrs.evolve(soak, load=attrs.evolve(soak.load, duration=20.0, users=30))
    tasks_before = asyncio.all_tasks()
    fds_before = _open_fds()
    with caplog.at_level(logging.ERROR):
        result = await Runner(short, report_dir=tmp_path / "report").run()
    snapshot = result.snapshot
    assert snapshot.completed > 500
    assert snapshot.succeeded >= 0.995 * snapshot.completed
    assert snapshot.retries > 0, "the faults were there and were retried"
    assert all(kind and kind != "unknown" for kind in snapshot.errors)
    assert snapshot.started == snapshot.succeeded + snapshot.failed + snapshot.cancelled
    assert snapshot.in_flight == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no unhandled exception"
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - tasks_before == set(), "no task left behind"
    assert _open_fds() <= fds_before, "no socket or file left open"


async def test_emulator_settings_reach_the_embedded_emulator(tmp_path: Path) -> None:
    """emulator.settings in a scenario changes the embedded tenant (here: no MFA at all)."""
    data: dict[str, Any] = {
        "users": {"pattern": "user{n}@example.test", "password": "Passw0rd!{n}", "count": 10},
        "factors": ["otp"],
        "load": {"model": "closed", "users": 2, "iterations": 4},
        "credentials": "memory",
        "emulator": {"settings": {"mfa_required": False}},
    }
    scenario = parse_scenario(data, source="s.yaml", base_dir=tmp_path)
    result = await Runner(scenario).run()
    assert result.snapshot.succeeded == 4
    assert result.snapshot.count("authenticators") == 0, "tokens came from the password grant"
