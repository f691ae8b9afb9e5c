"""Scale-out on Ray: shards on a local Ray instance, merged figures, lost workers, the CLI.

One local Ray instance (2 CPUs) serves the module; a 2-worker run is shared by the tests
that only read its result. Runs use each user once (OTP codes are single use per 30 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hdrh.histogram import HdrHistogram

from flowengine.credstore import open_store
from flowengine.errors import ConfigError
from flowengine.exitcodes import ExitCode
from flowengine.runner import RunResult
from flowengine.scaleout import ScaleOut, ray_session, split_scenario
from flowengine.spec import ClosedLoad, CsvUsers, OpenLoad, Scenario, parse_scenario
from flowengine.stats import FLOW, HIGHEST_US, PERCENTILES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def scenario(tmp_path: Path, users: int, load: dict[str, Any], **data: Any) -> Scenario:
    """An OTP scenario against the embedded emulator, with a SQLite store under tmp_path."""
    document = {
        "users": {"pattern": "user{n}@example.test", "password": "Passw0rd!{n}", "count": users},
        "factors": {"otp": 1},
        "credentials": f"sqlite:///{tmp_path / 'creds.db'}",
        "load": load,
        **data,
    }
    return parse_scenario(document, source="scaleout.yaml", base_dir=tmp_path)


@pytest.fixture(scope="module")
def ray_installed() -> None:
    """Skip (only) when Ray cannot be imported."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'flowengine[ray]'")


@pytest.fixture(scope="module")
def ray_instance(ray_installed: None) -> Iterator[Any]:
    """A local Ray instance for the module."""
    with ray_session(workers=2) as ray:
        yield ray


@pytest.fixture(scope="module")
def two_workers(
    ray_instance: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ScaleOut, RunResult, Path]:
    """One closed-model run of 300 users on 2 workers, with reports."""
    tmp = tmp_path_factory.mktemp("two")
    plan = scenario(tmp, 300, {"model": "closed", "users": 20, "iterations": 300})
    scale = ScaleOut(plan, workers=2, report_dir=tmp / "report")
    return scale, asyncio.run(scale.run()), tmp


def test_split_divides_users_and_load(tmp_path: Path) -> None:
    """Shards hold disjoint users and divided load that add up to the whole."""
    plan = scenario(
        tmp_path, 11, {"model": "open", "rate": 30, "iterations": 7, "max_in_flight": 5}
    )
    shards = split_scenario(plan, 2)
    names = [{u.username for u in s.users.iter_users()} for s in shards]
    assert not names[0] & names[1] and len(names[0] | names[1]) == 11
    loads = [s.load for s in shards]
    assert all(isinstance(load, OpenLoad) for load in loads)
    open_loads = [load for load in loads if isinstance(load, OpenLoad)]
    assert [load.rate for load in open_loads] == [15.0, 15.0]
    assert [load.iterations for load in open_loads] == [4, 3]
    assert [load.max_in_flight for load in open_loads] == [3, 2]


def test_split_refuses_fewer_virtual_users_than_workers(tmp_path: Path) -> None:
    """Three virtual users cannot make four shards."""
    plan = scenario(tmp_path, 100, {"model": "closed", "users": 3, "iterations": 10})
    with pytest.raises(ConfigError, match=r"load\.users"):
        split_scenario(plan, 4)


def test_split_makes_every_path_absolute(tmp_path: Path) -> None:
    """Shards run in other directories: the users CSV and the store are named absolutely."""
    (tmp_path / "users.csv").write_text("username,password\na@x.test,A\nb@x.test,B\n")
    relative = Path(os.path.relpath(tmp_path))
    plan = parse_scenario(
        {
            "users": {"csv": "users.csv"},
            "credentials": "sqlite:///creds.db",
            "load": {"model": "closed", "users": 2, "iterations": 2},
        },
        source="scaleout.yaml",
        base_dir=relative,
    )
    for shard in split_scenario(plan, 2):
        assert isinstance(shard.users, CsvUsers) and shard.users.path.is_absolute()
        assert shard.credentials.startswith("sqlite:////")


def test_merged_totals_equal_the_sum_of_the_shards(
    two_workers: tuple[ScaleOut, RunResult, Path],
) -> None:
    """Every count of the merged result is the sum of the two shards' counts."""
    scale, result, _ = two_workers
    parts = [w.snapshot for w in scale.workers]
    merged = result.snapshot
    assert [w.state for w in scale.workers] == ["finished", "finished"]
    assert merged.started == sum(p.started for p in parts) == 300
    assert merged.succeeded == sum(p.succeeded for p in parts) == 300
    for name in [FLOW, *merged.steps]:
        assert merged.count(name) == sum(p.count(name) for p in parts), name
    assert result.exit_code is ExitCode.OK


def test_merged_percentiles_equal_those_of_the_merged_histograms(
    two_workers: tuple[ScaleOut, RunResult, Path],
) -> None:
    """Each merged percentile is read from the sum of the shards' HDR histograms."""
    scale, result, _ = two_workers
    for name in [FLOW, *result.snapshot.steps]:
        summed = HdrHistogram(1, HIGHEST_US, 3)
        for worker in scale.workers:
            if worker.snapshot.has(name):
                summed.add(worker.snapshot.stat(name).histogram)
        for p in PERCENTILES:
            expected = summed.get_value_at_percentile(p) / 1e6
            assert result.snapshot.percentile(name, p) == expected, (name, p)


def test_report_has_a_row_per_worker(two_workers: tuple[ScaleOut, RunResult, Path]) -> None:
    """report.json lists both workers, and their started flows add up to the summary's."""
    _, result, _ = two_workers
    report = json.loads(result.reports["json"].read_text())
    rows = report["workers"]
    assert [row["worker"] for row in rows] == ["w1", "w2"]
    assert sum(row["started"] for row in rows) == report["summary"]["started"]
    assert report["meta"]["scaleout"]["workers"] == 2


def test_shared_store_ends_with_every_credential(
    two_workers: tuple[ScaleOut, RunResult, Path],
) -> None:
    """Both shards wrote the scenario's SQLite file: it holds all 300 enrolled users."""
    _, _, tmp = two_workers
    store = open_store(f"sqlite:///{tmp / 'creds.db'}")
    try:
        records = list(store.all())
    finally:
        store.close()
    assert len(records) == 300 and all(r.otp_secret for r in records)


def test_per_worker_stores_are_imported_by_the_driver(ray_instance: Any, tmp_path: Path) -> None:
    """Shards with files of their own send their records back; the driver's store gets all."""
    plan = scenario(tmp_path, 60, {"model": "closed", "users": 6, "iterations": 60})
    scale = ScaleOut(plan, workers=2, credentials="per-worker")
    asyncio.run(scale.run())
    store = open_store(plan.credentials)
    try:
        assert len(list(store.all())) == 60
    finally:
        store.close()
    assert not any(w.shares_store for w in scale.workers)


async def _kill_second_worker(scale: ScaleOut, ray: Any) -> RunResult:
    """Run ``scale``; kill worker 2 once a poll shows it with flows in flight."""
    run = asyncio.create_task(scale.run())
    victim = scale.workers[1]
    for _ in range(200):  # 20 s at most
        latest = victim.latest
        if latest is not None and latest.in_flight > 0 and latest.completed > 20:
            ray.kill(victim.actor, no_restart=True)
            break
        await asyncio.sleep(0.1)
    return await asyncio.wait_for(run, 60)


def test_killed_worker_is_reported_and_counts_add_up(ray_instance: Any, tmp_path: Path) -> None:
    """A worker killed mid-run: the run finishes, names it, and its flows count as lost."""
    plan = scenario(tmp_path, 5000, {"model": "closed", "users": 8, "duration": "4s"})
    messages: list[str] = []
    scale = ScaleOut(plan, workers=2, report_dir=tmp_path / "report", notify=messages.append)
    result = asyncio.run(_kill_second_worker(scale, ray_instance))
    merged = result.snapshot
    assert [w.state for w in scale.workers] == ["finished", "lost"]
    assert scale.lost_flows > 0
    assert merged.started == merged.completed + merged.cancelled + scale.lost_flows
    assert result.exit_code is ExitCode.CRASH
    assert any("worker w2" in m and "lost" in m for m in messages)
    meta = json.loads(result.reports["json"].read_text())["meta"]["scaleout"]
    assert meta["lost_workers"] == ["w2"] and meta["lost_flows"] == scale.lost_flows


def test_stop_policy_stops_the_others_after_a_loss(ray_instance: Any, tmp_path: Path) -> None:
    """With on_worker_loss=stop, the surviving worker stops long before the 30 s duration."""
    plan = scenario(tmp_path, 5000, {"model": "closed", "users": 4, "duration": "30s"})
    scale = ScaleOut(plan, workers=2, on_worker_loss="stop", grace=2.0)
    result = asyncio.run(_kill_second_worker(scale, ray_instance))
    assert [w.state for w in scale.workers] == ["finished", "lost"]
    assert result.snapshot.elapsed < 25
    assert not result.interrupted


def test_cli_without_ray_explains_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--workers without Ray installed exits BAD_INPUT naming the extra to install."""
    from flowengine import run_cli

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setattr(run_cli, "configure_logging", lambda level: None)
    path = tmp_path / "s.yaml"
    path.write_text(
        "users: {pattern: 'u{n}@example.test', password: 'P{n}', count: 10}\n"
        "load: {model: closed, users: 2, iterations: 4}\n"
    )
    outcome = CliRunner().invoke(run_cli.run_command, [str(path), "--workers", "2", "--no-live"])
    assert outcome.exit_code == ExitCode.BAD_INPUT
    assert "pip install 'flowengine[ray]'" in outcome.output


def test_closed_load_split_keeps_ramp_duration(tmp_path: Path) -> None:
    """Ramp-up is divided with the virtual users, so the whole ramp takes as long."""
    plan = scenario(
        tmp_path, 100, {"model": "closed", "users": 10, "ramp_up": 10, "iterations": 10}
    )
    loads = [s.load for s in split_scenario(plan, 2)]
    closed = [load for load in loads if isinstance(load, ClosedLoad)]
    assert [(load.users, load.ramp_up) for load in closed] == [(5, 5.0), (5, 5.0)]


def _flowengine(*args: str) -> subprocess.Popen[str]:
    """``flowengine ARGS`` in a child process, its stderr readable line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "flowengine", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _write_scenario(tmp_path: Path, load: str) -> Path:
    path = tmp_path / "scaled.yaml"
    path.write_text(
        "name: scaled\n"
        "users: {pattern: 'user{n}@example.test', password: 'Passw0rd!{n}', count: 5000}\n"
        f"factors: {{otp: 1}}\ncredentials: 'sqlite:///{tmp_path / 'creds.db'}'\n"
        f"load: {load}\n"
    )
    return path


def test_cli_workers_writes_a_report_row_per_worker(ray_installed: None, tmp_path: Path) -> None:
    """flowengine run --workers 2 exits 0 and its report has the merged whole and 2 rows."""
    path = _write_scenario(tmp_path, "{model: closed, users: 10, iterations: 200}")
    child = _flowengine("run", str(path), "--workers", "2", "--report", str(tmp_path / "r"))
    out, err = child.communicate(timeout=100)
    assert child.returncode == ExitCode.OK, err[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["summary"]["succeeded"] == 200
    assert [row["worker"] for row in report["workers"]] == ["w1", "w2"]
    assert "200 flows" in out


def test_cli_interrupt_stops_every_worker_and_writes_reports(
    ray_installed: None, tmp_path: Path
) -> None:
    """Ctrl-C on the driver: every shard stops gracefully, partial reports, exit 130."""
    path = _write_scenario(tmp_path, "{model: closed, users: 6, duration: 60s}")
    child = _flowengine("run", str(path), "--workers", "2", "--report", str(tmp_path / "r"))
    assert child.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:  # a line with flows done
        ready, _, _ = select.select([child.stderr], [], [], 1.0)
        line = child.stderr.readline() if ready else ""
        if re.search(r"ok [1-9]", line):
            break
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == ExitCode.INTERRUPTED, err[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    summary = report["summary"]
    assert report["meta"]["interrupted"] and summary["succeeded"] > 0
    assert summary["in_flight"] == 0 and summary["cancelled"] == 0
    assert report["summary"]["duration_s"] < 50


def test_default_run_never_imports_ray(tmp_path: Path) -> None:
    """Without --workers, a whole run happens in-process and Ray is never imported."""
    path = _write_scenario(tmp_path, "{model: closed, users: 2, iterations: 4}")
    code = (
        "import sys\n"
        "from flowengine.cli import main\n"
        "try:\n"
        f"    main(['run', {str(path)!r}, '--no-report', '--no-live'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
