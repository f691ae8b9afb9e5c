"""The live view: plain lines off a terminal, a redrawn table on one, never a secret."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from flowengine.clock import ManualClock
from flowengine.live import LiveView, format_line
from flowengine.stats import OK, Stats, StatsSnapshot

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.c2lnbmF0dXJl"


def _stats(clock: ManualClock, flows: int = 100, kind: str = "invalid_code") -> Stats:
    stats = Stats(clock=clock.monotonic)
    for n in range(flows):
        stats.record_start()
        stats.record_step("password", 0.010, OK)
        stats.record_step("grant:mfa-otp", 0.020, OK if n % 10 else kind)
        stats.record_flow(0.050, OK if n % 10 else "failed", kind)
        clock.advance(0.01)
    return stats


def _plain(clock: ManualClock) -> tuple[LiveView, io.StringIO]:
    stream = io.StringIO()
    return LiveView(console=Console(file=stream), clock=clock.monotonic), stream


def _terminal(clock: ManualClock) -> tuple[LiveView, io.StringIO]:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120, color_system=None)
    return LiveView(console=console, clock=clock.monotonic), stream


def test_plain_mode_prints_one_line_per_interval() -> None:
    """Off a terminal, updates within the same second print a single line."""
    clock = ManualClock()
    stats = _stats(clock)
    view, stream = _plain(clock)
    view.start()
    for _ in range(4):  # 0.0, 0.4, 0.8, 1.2 s
        stats.record_flow(0.05, OK)
        view.update(stats.snapshot(series=False), in_flight=2, waiting=1)
        clock.advance(0.4)
    assert len(stream.getvalue().splitlines()) == 2
    assert "\x1b[" not in stream.getvalue()


def test_plain_line_shows_progress_rates_percentiles_and_errors() -> None:
    """A plain line has counts, flows/s, in-flight, waiting, p50/p95/p99 and errors by kind."""
    clock = ManualClock()
    snapshot = _stats(clock).snapshot()
    line = format_line(snapshot, rate=12.5, in_flight=3, waiting=4, duration=10.0)
    assert line.startswith("[1.0s/10.0s  10%]")
    assert "started 100 ok 90 failed 10 (10.00%)" in line
    assert "12.5 flows/s (avg 100.0)" in line
    assert "in-flight 3 waiting 4" in line
    assert "flow p50/p95/p99 50.0/50.0/50.0 ms" in line
    assert "password 10.0/10.0/10.0" in line
    assert line.endswith("errors invalid_code=10")


def test_plain_mode_progress_counts_done_flows_against_total() -> None:
    """With a total instead of a duration, progress is finished flows out of it."""
    snapshot = _stats(ManualClock()).snapshot()
    line = format_line(snapshot, rate=0.0, in_flight=0, waiting=0, total=400)
    assert line.startswith("[1.0s 100/400  25%]")


def test_stop_prints_a_final_line_only_when_something_changed() -> None:
    """stop() prints the last figures unless that very line was just printed."""
    clock = ManualClock()
    stats = _stats(clock)
    view, stream = _plain(clock)
    view.start()
    view.update(stats.snapshot())
    view.stop()
    assert len(stream.getvalue().splitlines()) == 1
    view.start()
    view.update(stats.snapshot())
    stats.record_flow(0.05, OK)
    view.update(stats.snapshot())
    view.stop()
    assert len(stream.getvalue().splitlines()) == 3


def test_nothing_is_printed_before_start() -> None:
    """Updates before start() only remember the snapshot."""
    clock = ManualClock()
    view, stream = _plain(clock)
    view.update(_stats(clock).snapshot())
    view.stop()
    assert stream.getvalue() == ""


def test_terminal_mode_renders_the_table() -> None:
    """On a terminal the view draws a table with every step and its percentiles."""
    clock = ManualClock()
    view, stream = _terminal(clock)
    with view:
        view.update(_stats(clock).snapshot(series=False), in_flight=7, waiting=3)
    out = stream.getvalue()
    assert view.is_terminal
    assert "\x1b[" in out  # cursor control: a live redraw, not lines
    assert "in flight 7  waiting for a slot 3" in out
    assert "grant:mfa-otp" in out
    assert "p99 ms" in out
    assert "errors: invalid_code=10" in out


def test_terminal_mode_redraws_at_most_refresh_rate() -> None:
    """Updates faster than refresh_per_second are not all drawn."""
    clock = ManualClock()
    stats = _stats(clock)
    view, stream = _terminal(clock)
    view.start()
    for _ in range(10):  # 10 updates in 0.1 s
        view.update(stats.snapshot(series=False))
        clock.advance(0.01)
    frames = stream.getvalue().count("p99 ms")
    view.stop()
    assert frames == 1


def test_rate_is_measured_over_recent_updates() -> None:
    """flows/s is the recent rate between updates, not the run's average."""
    clock = ManualClock()
    stats = _stats(clock, flows=100)  # 100 flows in the first second
    view, _ = _plain(clock)
    view.update(stats.snapshot())
    clock.advance(1.0)
    for _ in range(10):
        stats.record_flow(0.05, OK)
    view.update(stats.snapshot())
    assert view.rate == pytest.approx(10.0)


def _leaky_snapshot(clock: ManualClock) -> StatsSnapshot:
    stats = _stats(clock, kind=f"bad token {JWT}")
    stats.record_step(f"[red]Bearer {JWT}[/red]", 0.01, OK)
    return stats.snapshot()


def test_plain_mode_never_prints_a_secret() -> None:
    """Secret-looking text in step names or error kinds is masked in plain lines."""
    clock = ManualClock()
    view, stream = _plain(clock)
    with view:
        view.update(_leaky_snapshot(clock))
    assert JWT not in stream.getvalue()
    assert "***" in stream.getvalue()


def test_terminal_mode_never_prints_a_secret_nor_reads_markup() -> None:
    """The table masks secrets and shows external text literally, not as rich markup."""
    clock = ManualClock()
    view, stream = _terminal(clock)
    with view:
        view.update(_leaky_snapshot(clock))
    out = stream.getvalue()
    assert JWT not in out
    assert "[red]Bearer ***[/red]" in out


async def test_async_context_manager_starts_and_stops() -> None:
    """async with starts the view and prints the final line on exit."""
    clock = ManualClock()
    view, stream = _plain(clock)
    async with view as live:
        live.update(_stats(clock).snapshot())
        clock.advance(0.1)
        live.update(_stats(clock).snapshot())
    assert len(stream.getvalue().splitlines()) == 2
