"""The runner in-process: load models, stats, reports, thresholds, credentials."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware
from pytest_aiohttp import AiohttpServer

from flowengine.emulator import EmulatorConfig, create_app
from flowengine.emulator.config import PopulationConfig
from flowengine.exitcodes import ExitCode
from flowengine.runner import Runner, RunOverrides, apply_overrides
from flowengine.spec import Scenario, parse_scenario

POPULATION = {
    "pattern": "user{n}@example.test",
    "password": "Passw0rd!{n}",
    "count": 200,
    "phone": "+1555{n:07d}",
}


def scenario(tmp_path: Path, **data: Any) -> Scenario:
    """A scenario from ``data``, with a fresh SQLite store under tmp_path."""
    document = {
        "users": POPULATION,
        "factors": {"otp": 1},
        "credentials": f"sqlite:///{tmp_path / 'creds.db'}",
        **data,
    }
    return parse_scenario(
        document, source="test.yaml", base_dir=tmp_path, env={"SECRET": "flowengine-secret"}
    )


async def test_closed_model_keeps_the_asked_concurrency(tmp_path: Path) -> None:
    """N virtual users: N flows in flight at the peak, and the asked iterations done."""
    runner = Runner(scenario(tmp_path, load={"model": "closed", "users": 20, "iterations": 200}))
    result = await runner.run()
    assert result.snapshot.completed == 200 and result.snapshot.succeeded == 200
    assert runner.max_in_flight == 20
    assert result.exit_code is ExitCode.OK


async def test_open_model_reaches_the_asked_rate(tmp_path: Path) -> None:
    """Arrivals at 100/s for 2 s start about 200 flows, whatever their duration."""
    runner = Runner(scenario(tmp_path, load={"model": "open", "rate": 100, "duration": "2s"}))
    result = await runner.run()
    started = result.snapshot.completed + result.snapshot.missed_starts
    assert 190 <= started <= 202
    assert result.snapshot.missed_starts == 0
    assert result.snapshot.succeeded == result.snapshot.completed


def slow(delay: float) -> Middleware:
    """Middleware that answers every request ``delay`` seconds late."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        await asyncio.sleep(delay)
        return await handler(request)

    return middleware


async def test_open_model_latency_includes_queueing(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    """Against a slow target the open model's flow latency shows the client-side queue."""
    config = EmulatorConfig(populations=(PopulationConfig(count=200),))
    app = create_app(config)
    app.middlewares.append(slow(0.1))  # 4 requests: 0.4 s a flow
    server = await aiohttp_server(app)
    target = {
        "base_url": str(server.make_url("")).rstrip("/"),
        "client_id": "flowengine",
        "client_secret": "${SECRET}",
        "audience": "https://api.example.test/",
    }
    # 10 connections serve 25 flows/s; 50/s arrive for 2 s, so the queue grows to ~2 s.
    loaded = scenario(tmp_path, target=target, load={"model": "open", "rate": 50, "duration": "2s"})
    result = await Runner(loaded, connections=10).run()
    snapshot = result.snapshot
    assert snapshot.failed == 0 and snapshot.completed >= 95
    service = snapshot.percentile("password", 95)
    flow = snapshot.percentile("flow", 95)
    queue = snapshot.percentile("queue", 95)
    assert service is not None and flow is not None and queue is not None
    assert queue > 1.0, "flows waited for a connection"
    assert flow > queue + 3 * service, "the flow's latency counts its wait from the intended start"


async def test_second_run_challenges_what_the_first_enrolled(tmp_path: Path) -> None:
    """The credential store carries enrollments to the next run's embedded emulator."""
    data = {
        "factors": {"otp": 1, "sms": 1, "email": 1},
        "load": {"model": "closed", "users": 10, "iterations": 30},
    }
    first = await Runner(scenario(tmp_path, **data)).run()
    assert first.meta["enrolled_in_run"] == 30
    second = await Runner(scenario(tmp_path, **data)).run()
    assert second.snapshot.succeeded == 30
    assert second.meta["enrolled_in_run"] == 0
    assert second.snapshot.count("challenge") == 30


async def test_a_threshold_that_cannot_hold_sets_the_exit_code(tmp_path: Path) -> None:
    """p95(flow) < 1ms fails: the run's exit code is THRESHOLDS_FAILED."""
    loaded = scenario(
        tmp_path,
        load={"model": "closed", "users": 5, "iterations": 10},
        thresholds=["p95(flow) < 1ms"],
    )
    result = await Runner(loaded).run()
    assert result.exit_code is ExitCode.THRESHOLDS_FAILED
    assert [t.passed for t in result.thresholds] == [False]


async def test_reports_are_written(tmp_path: Path) -> None:
    """JSON, CSV and HTML reports land in the report directory."""
    loaded = scenario(tmp_path, load={"model": "closed", "users": 5, "iterations": 10})
    result = await Runner(loaded, report_dir=tmp_path / "report").run()
    assert set(result.reports) == {"json", "steps_csv", "series_csv", "html"}
    assert all(path.exists() and path.stat().st_size > 0 for path in result.reports.values())


async def test_stop_lets_in_flight_flows_finish(tmp_path: Path) -> None:
    """A stop mid-run starts no new flow; the counts add up and the run is marked interrupted."""
    loaded = scenario(tmp_path, load={"model": "closed", "users": 10, "duration": "30s"})
    runner = Runner(loaded)
    task = asyncio.ensure_future(runner.run())
    for _ in range(2000):  # bounded poll of the run's own counters (no event to wait on)
        if runner.stats.snapshot(series=False).completed >= 20:
            break
        await asyncio.sleep(0.01)
    runner.stop()
    result = await asyncio.wait_for(task, timeout=20)
    snapshot = result.snapshot
    assert result.exit_code is ExitCode.INTERRUPTED and result.interrupted
    assert snapshot.in_flight == 0
    assert snapshot.started == snapshot.succeeded + snapshot.failed + snapshot.cancelled


async def test_factor_mix_is_stable_per_user(tmp_path: Path) -> None:
    """The same user draws the same factor on every run with the same seed."""
    loaded = scenario(
        tmp_path,
        factors={"otp": 1, "sms": 1, "push": 1},
        load={"model": "closed", "users": 1, "iterations": 1},
    )
    first, second = Runner(loaded), Runner(loaded)
    users = list(loaded.users.iter_users())[:50]
    picks = [first.factor_for(u) for u in users]
    assert picks == [second.factor_for(u) for u in users]
    assert set(picks) == {"otp", "sms", "push"}


def test_overrides_turn_a_closed_scenario_open(tmp_path: Path) -> None:
    """--rate makes the run open-model with that rate; --population resizes the users."""
    loaded = scenario(tmp_path, load={"model": "closed", "users": 5, "duration": "10s"})
    changed = apply_overrides(loaded, RunOverrides(rate=25.0, population=50))
    assert changed.load is not None and changed.load.model == "open"
    assert changed.users.count == 50


def test_users_override_is_refused_for_open_runs(tmp_path: Path) -> None:
    """--users means closed-model concurrency: with an open scenario it is an error."""
    loaded = scenario(tmp_path, load={"model": "open", "rate": 5, "duration": "1s"})
    with pytest.raises(ValueError, match="--users sets closed-model concurrency"):
        apply_overrides(loaded, RunOverrides(users=5))


async def test_report_meta_lists_the_factor_mix_unmasked(tmp_path: Path) -> None:
    """The factor mix reaches the report as written ("otp" is also a secret field name)."""
    loaded = scenario(
        tmp_path,
        factors={"otp": 2, "email": 1},
        load={"model": "closed", "users": 2, "iterations": 2},
    )
    result = await Runner(loaded, report_dir=tmp_path / "report").run()
    report = json.loads(result.reports["json"].read_text())
    assert report["meta"]["factors"] == [
        {"factor": "otp", "weight": 2.0},
        {"factor": "email", "weight": 1.0},
    ]
