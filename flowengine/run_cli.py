"""``flowengine run SCENARIO``: run a scenario file with a live view, reports and thresholds.

Exit codes (:mod:`flowengine.exitcodes`): 0 every threshold and journey expectation held,
98 a journey step's expectation failed, 99 a threshold failed, 2 bad input (command line,
scenario, tenant or credential store), 130 interrupted (partial reports are written), 1
anything unexpected. Ctrl-C once: stop starting flows and let the
ones in flight finish within ``--grace``; twice: stop at once.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flowengine.errors import ConfigError, CredentialStoreError, FlowEngineError
from flowengine.exitcodes import ExitCode
from flowengine.live import LiveView
from flowengine.log import configure_logging
from flowengine.runner import Runner, RunOverrides, RunResult, apply_overrides
from flowengine.signals import run_with_signals
from flowengine.spec import load_scenario, parse_duration, parse_rate

__all__ = ["default_report_dir", "event_loop_factory", "print_summary", "run_command"]


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (``pip install 'flowengine[fast]'``), else
    None (asyncio's): the client spends ~10-20 % less CPU per flow on uvloop
    (benchmarks/README.md)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def default_report_dir(name: str, now: datetime.datetime | None = None) -> Path:
    """``reports/<scenario>-<UTC time>``."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    return Path("reports") / f"{safe}-{stamp}"


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--duration") from None


def _rate(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate") from None


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


_MAX_FAILURES_SHOWN = 20


def _print_journeys(result: RunResult, console: Console) -> None:
    journeys = result.journeys
    if journeys is None:
        return
    counts = journeys.counts()
    console.print(
        f"[bold]journeys[/] (seed {journeys.seed}): {counts['users']} users,"
        f" {counts['users_passed']} passed, {counts['users_failed']} failed,"
        f" {counts['users_skipped']} skipped"
    )
    for journey in journeys.journeys:
        passed = sum(user.status == "pass" for user in journey.users)
        mark = "[green]PASS[/]" if journey.passed else "[red]FAIL[/]"
        console.print(f"{mark} {escape(journey.name)}: {passed} of {len(journey.users)} users")
    failures = journeys.failures()
    for user, step in failures[:_MAX_FAILURES_SHOWN]:
        where = f" (iteration {step.iteration})" if step.iteration else ""
        console.print(
            f"[red]FAILED[/] journey {escape(user.journey)}, user {escape(user.username)},"
            f" step {escape(step.path)} ({escape(step.label)}){where}\n"
            f"    expected: {escape(step.expected or '')}\n"
            f"    actual:   {escape(step.actual or '')}",
            highlight=False,
        )
    if len(failures) > _MAX_FAILURES_SHOWN:
        console.print(f"... and {len(failures) - _MAX_FAILURES_SHOWN} more (see the reports)")


def print_summary(result: RunResult, console: Console) -> None:
    """The end-of-run summary: flows, latency per step, thresholds, failed journey
    expectations (user, step, expected, actual), report files."""
    snapshot = result.snapshot
    if result.meta.get("load") is None:
        _print_journeys(result, console)
        _print_tail(result, console)
        return
    console.print(
        f"[bold]{result.meta['scenario']}[/]: {snapshot.completed} flows in "
        f"{snapshot.elapsed:.1f} s ({snapshot.flows_per_second:.1f}/s), "
        f"{snapshot.succeeded} succeeded, {snapshot.failed} failed, "
        f"{snapshot.cancelled} cancelled, {snapshot.missed_starts} missed starts; "
        f"{result.meta['enrolled_in_run']} enrolled"
    )
    table = Table("step", "count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms")
    for stat in [snapshot.flow, *snapshot.ordered_steps()]:
        table.add_row(
            stat.name,
            str(stat.count),
            str(stat.errors),
            _ms(stat.percentile(50)),
            _ms(stat.percentile(95)),
            _ms(stat.percentile(99)),
            _ms(stat.max),
        )
    console.print(table)
    if snapshot.errors:
        top = sorted(snapshot.errors.items(), key=lambda item: -item[1])[:8]
        console.print("errors: " + ", ".join(f"{kind} {count}" for kind, count in top))
    _print_journeys(result, console)
    _print_tail(result, console)


def _print_tail(result: RunResult, console: Console) -> None:
    for threshold in result.thresholds:
        mark = "[green]PASS[/]" if threshold.passed else "[red]FAIL[/]"
        console.print(f"{mark} {threshold.describe()}")
    for kind, path in result.reports.items():
        console.print(f"{kind}: {path}")


@click.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--users", type=click.IntRange(min=1), help="Closed model: concurrent virtual users.")
@click.option(
    "--rate",
    help="Open model: flows started per second (50, 50/s, 600/m); turns a closed scenario open.",
)
@click.option("--population", type=click.IntRange(min=1), help="Distinct generated users.")
@click.option("--duration", help="How long to start flows (30s, 2m).")
@click.option("--iterations", type=click.IntRange(min=1), help="How many flows to start.")
@click.option("--seed", type=int, help="Seed for factor choice and think times.")
@click.option("--credentials", help="Credential store: memory or sqlite:///PATH.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for report.json, steps.csv, series.csv, report.html"
    " (default: reports/<scenario>-<time>).",
)
@click.option("--no-report", is_flag=True, help="Write no report files.")
@click.option(
    "--live/--no-live", default=True, show_default=True, help="Show progress while running."
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds in-flight flows may take after Ctrl-C.",
)
@click.option(
    "--acknowledge-load-test",
    is_flag=True,
    help="Confirm that the tenant's owner approved this load test (needed above"
    " 2 flows/s or 2 virtual users on a target that is not on this machine).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Run N shards as Ray actors (needs flowengine[ray]); default: one in-process shard.",
)
@click.option(
    "--ray-address", help="Join this Ray cluster (or 'auto') instead of starting a local one."
)
@click.option(
    "--on-worker-loss",
    type=click.Choice(["continue", "stop"]),
    default="continue",
    show_default=True,
    help="When a worker dies: let the others finish, or stop them.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
def run_command(
    scenario: Path,
    users: int | None,
    rate: str | None,
    population: int | None,
    duration: str | None,
    iterations: int | None,
    seed: int | None,
    credentials: str | None,
    report_dir: Path | None,
    no_report: bool,
    live: bool,
    grace: float,
    acknowledge_load_test: bool,
    workers: int | None,
    ray_address: str | None,
    on_worker_loss: Literal["continue", "stop"],
    log_level: str,
) -> None:
    """Run a scenario file (load against the embedded emulator or a tenant)."""
    configure_logging(log_level)
    err = Console(stderr=True)
    overrides = RunOverrides(
        users=users,
        rate=_rate(rate),
        population=population,
        duration=_duration(duration),
        iterations=iterations,
        seed=seed,
        credentials=credentials,
    )
    try:
        loaded = apply_overrides(load_scenario(scenario), overrides)
        directory = None if no_report else report_dir or default_report_dir(loaded.name)
        view = None
        if live and loaded.load is not None:  # journeys alone: their summary says it all
            view = LiveView(
                console=err,
                title=loaded.name,
                duration=loaded.load.duration,
                total=loaded.load.iterations,
            )
        if workers is not None or ray_address is not None:
            if workers is None:
                raise ConfigError("give --workers N with --ray-address", path="--ray-address")
            from flowengine.scaleout import run_scaled

            result = run_scaled(
                loaded,
                workers=workers,
                address=ray_address,
                on_worker_loss=on_worker_loss,
                report_dir=directory,
                live=view,
                grace=grace,
                notify=lambda message: err.print(message, markup=False, highlight=False),
                acknowledge_load_test=acknowledge_load_test,
            )
        else:
            runner = Runner(
                loaded,
                report_dir=directory,
                live=view,
                grace=grace,
                acknowledge_load_test=acknowledge_load_test,
                notify=lambda message: err.print(message, markup=False, highlight=False),
            )
            with asyncio.Runner(loop_factory=event_loop_factory()) as loop:
                result = loop.run(run_with_signals(runner))
    except (ConfigError, CredentialStoreError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.BAD_INPUT)
    except FlowEngineError as exc:
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(ExitCode.CRASH)
    print_summary(result, Console(soft_wrap=True))
    sys.exit(result.exit_code)
