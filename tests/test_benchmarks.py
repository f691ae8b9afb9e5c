"""The benchmark scripts keep working: each runs once in its tiny configuration.

Only exit codes and the shape of the JSON are checked: never a wall time or a rate.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def quick_run(script: str, out: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run ``benchmarks/SCRIPT --quick --json OUT``; its process (exit 0) and its JSON."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(out.read_text())


@pytest.mark.slow
def test_emulator_rps_quick_run_writes_its_json(tmp_path: Path) -> None:
    """emulator_rps.py --quick exits 0 and reports positive figures for every run."""
    _, data = quick_run("emulator_rps.py", tmp_path / "emulator_rps.json")
    assert {"setup", "results", "rounds", "summary"} <= data.keys()
    pairs = {(r["scenario"], r["target"]) for r in data["results"]}
    expected = {(s, t) for s in ("password", "flow") for t in ("emulator", "bare")}
    assert pairs == expected | {("flow", "bare+sign")}
    for row in data["results"]:
        for key in ("units", "rate", "requests_per_s", "server_cpu_us", "client_cpu_us"):
            assert row[key] > 0, (row["scenario"], row["target"], key)
    for scenario in ("password", "flow"):
        summary = data["summary"][scenario]
        assert summary["rate_ratio"] > 0
        assert summary["server_cpu_ratio"] > 0
        assert isinstance(summary["goal_met"], bool)
    assert data["summary"]["flow"]["signatures_per_flow"] == 2
    assert data["summary"]["flow"]["server_cpu_us_bare_sign"] > 0
    assert "2 RS256 signatures" in data["setup"]["flow_scope"]


@pytest.mark.slow
def test_scaling_quick_run_writes_its_json(tmp_path: Path) -> None:
    """scaling.py --quick exits 0 and reports every one-shard and 1-vs-2-worker run."""
    pytest.importorskip(
        "ray", reason="scaling.py compares Ray workers: pip install 'flowengine[ray]'"
    )
    _, data = quick_run("scaling.py", tmp_path / "scaling.json")
    assert {"setup", "single", "rounds", "summary"} <= data.keys()
    assert [row["concurrency"] for row in data["single"]] == [10, 40]
    for pair in data["rounds"]:
        assert (pair["one"]["workers"], pair["two"]["workers"]) == (1, 2)
        for row in (pair["one"], pair["two"]):
            assert row["flows"] == 200 and row["failed"] == 0
            assert row["flows_per_client_cpu_s"] > 0
    assert data["summary"]["efficiency_ratio_2_vs_1"] > 0


@pytest.mark.slow
def test_client_cost_quick_run_writes_its_json(tmp_path: Path) -> None:
    """client_cost.py --quick exits 0 and reports positive CPU and rates for every client;
    without Locust it says so and still measures the engine and the raw loop."""
    done, data = quick_run("client_cost.py", tmp_path / "client_cost.json")
    assert {"setup", "rounds", "summary"} <= data.keys()
    runs = {row["run"] for row in data["rounds"]}
    assert {"engine/uvloop", "engine/asyncio", "raw/uvloop", "raw/asyncio"} <= runs
    if importlib.util.find_spec("locust") is None:
        assert "Locust is not installed" in done.stdout
        assert "locust/gevent" not in runs
    else:
        assert "locust/gevent" in runs
    for row in data["rounds"]:
        for key in ("flows", "flows_per_s", "client_cpu_us", "server_cpu_us"):
            assert row[key] > 0, (row["run"], key)
        assert row["failed"] == 0, row
    for name, ratio in data["summary"]["ratios"].items():
        assert ratio["ratio"] > 0, name
    assert data["summary"]["medians"]["engine/uvloop"]["client_cpu_us"] > 0


@pytest.mark.slow
def test_memory_quick_run_writes_its_json(tmp_path: Path) -> None:
    """memory.py --quick exits 0 and reports the heap each held login adds, both ways."""
    _, data = quick_run("memory.py", tmp_path / "memory.json")
    assert {"setup", "runs", "summary", "verdicts"} <= data.keys()
    assert {(s["scenario"], s["flows"]) for s in data["summary"]} == {
        (scenario, size) for scenario in ("queued", "parked") for size in (150, 300)
    }
    for entry in data["summary"]:
        assert entry["traced_kib"] > 0, entry
        assert isinstance(entry["rss_kib"], float), entry
    queued = [s for s in data["summary"] if s["scenario"] == "queued"]
    assert all(s["on_the_wire"] == 100 and s["queued_at_gate"] == s["flows"] - 100 for s in queued)
    parked = [s for s in data["summary"] if s["scenario"] == "parked"]
    assert all(s["parked"] == s["flows"] for s in parked)
