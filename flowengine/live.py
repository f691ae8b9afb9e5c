"""The live view of a run: a rich table on a terminal, plain periodic lines otherwise.

The runner drives it: ``start()``, then ``update(snapshot, in_flight=..., waiting=...)`` a
few times per second with ``Stats.snapshot(series=False)``, then ``stop()``; or use it as a
(sync or async) context manager. On a terminal the table is redrawn at most
``refresh_per_second`` times per second; elsewhere (CI logs, pipes) one line is printed per
``line_interval`` seconds and a last one at ``stop()``. Every text shown passes through
:func:`flowengine.log.mask_secrets`, and external strings are never read as rich markup.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from flowengine.log import mask_secrets
from flowengine.stats import FLOW, StatsSnapshot, StepStats

__all__ = ["LiveView", "format_line"]

_RATE_WINDOW = 5.0
_LIVE_PERCENTILES = (50.0, 95.0, 99.0)
_TOP_ERRORS = 6


def _safe(text: str) -> str:
    return str(mask_secrets(str(text)))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "0.00%"


def _errors_text(snapshot: StatsSnapshot, limit: int = _TOP_ERRORS) -> str:
    ranked = sorted(snapshot.errors.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = " ".join(f"{_safe(kind)}={n}" for kind, n in ranked[:limit])
    if len(ranked) > limit:
        shown += f" (+{len(ranked) - limit} more)"
    return shown or "none"


def _progress(
    snapshot: StatsSnapshot, duration: float | None, total: int | None
) -> tuple[str, float | None]:
    """Progress text and fraction done (None when unknown)."""
    if duration:
        done = min(snapshot.elapsed / duration, 1.0)
        return f"{_duration(snapshot.elapsed)}/{_duration(duration)} {done:4.0%}", done
    if total:
        finished = snapshot.flow.count
        done = min(finished / total, 1.0)
        return f"{_duration(snapshot.elapsed)} {finished}/{total} {done:4.0%}", done
    return _duration(snapshot.elapsed), None


def _step_percentiles(step: StepStats) -> str:
    values = step.percentiles(_LIVE_PERCENTILES)
    return "/".join(_ms(values[p]) for p in _LIVE_PERCENTILES)


def format_line(
    snapshot: StatsSnapshot,
    *,
    rate: float,
    in_flight: int,
    waiting: int,
    duration: float | None = None,
    total: int | None = None,
) -> str:
    """The plain one-line form of a snapshot (for logs and pipes)."""
    progress, _ = _progress(snapshot, duration, total)
    steps = ", ".join(
        f"{_safe(s.name)} {_step_percentiles(s)}" for s in snapshot.ordered_steps() if s.timed
    )
    parts = [
        f"[{progress}]",
        f"started {snapshot.started} ok {snapshot.succeeded} failed {snapshot.failed} "
        f"({_percent(snapshot.failed, snapshot.completed)}) cancelled {snapshot.cancelled} "
        f"missed {snapshot.missed_starts}",
        f"{rate:.1f} flows/s (avg {snapshot.flows_per_second:.1f})",
        f"in-flight {in_flight} waiting {waiting}",
        f"flow p50/p95/p99 {_step_percentiles(snapshot.flow)} ms",
    ]
    if steps:
        parts.append(f"steps {steps}")
    parts.append(f"errors {_errors_text(snapshot)}")
    return _safe(" | ".join(parts))


class LiveView:
    """Shows a run's progress from stats snapshots; see the module docstring."""

    def __init__(
        self,
        *,
        console: Console | None = None,
        title: str = "flowengine",
        duration: float | None = None,
        total: int | None = None,
        refresh_per_second: float = 4.0,
        line_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.title = _safe(title)
        self.duration = duration
        self.total = total
        self.line_interval = line_interval
        self._min_redraw = 1.0 / refresh_per_second
        self._clock = clock
        self._live: Live | None = None
        self._snapshot: StatsSnapshot | None = None
        self._in_flight = 0
        self._waiting = 0
        self._history: deque[tuple[float, int]] = deque()
        self._last_output = -float("inf")
        self._last_line = ""
        self._started = False

    @property
    def is_terminal(self) -> bool:
        """Whether the view redraws a table (else it prints lines)."""
        return self.console.is_terminal

    def start(self) -> None:
        """Begin showing (a no-op when already started)."""
        if self._started:
            return
        self._started = True
        self._last_output = -float("inf")
        if self.is_terminal:
            self._live = Live(
                self.render(), console=self.console, auto_refresh=False, transient=False
            )
            self._live.start()

    def update(
        self, snapshot: StatsSnapshot, *, in_flight: int | None = None, waiting: int = 0
    ) -> None:
        """Take the latest snapshot; redraw or print if it is time to."""
        self._snapshot = snapshot
        self._in_flight = snapshot.in_flight if in_flight is None else in_flight
        self._waiting = waiting
        history = self._history
        if history and snapshot.elapsed < history[-1][0]:
            history.clear()
        history.append((snapshot.elapsed, snapshot.completed))
        while len(history) > 2 and snapshot.elapsed - history[1][0] >= _RATE_WINDOW:
            history.popleft()
        now = self._clock()
        if self._live is not None:
            if now - self._last_output >= self._min_redraw:
                self._last_output = now
                self._live.update(self.render(), refresh=True)
        elif self._started and now - self._last_output >= self.line_interval:
            self._last_output = now
            self._print_line()

    def stop(self) -> None:
        """Show the final figures and stop (a no-op when not started)."""
        if not self._started:
            return
        self._started = False
        if self._live is not None:
            self._live.update(self.render(), refresh=True)
            self._live.stop()
            self._live = None
        elif self._snapshot is not None and self.line() != self._last_line:
            self._print_line()

    @property
    def rate(self) -> float:
        """Recent completed flows per second (over the last ~5 s of updates)."""
        if len(self._history) < 2:
            return self._snapshot.flows_per_second if self._snapshot else 0.0
        (t0, n0), (t1, n1) = self._history[0], self._history[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def line(self) -> str:
        """The latest snapshot as one plain line ('' before the first update)."""
        if self._snapshot is None:
            return ""
        return format_line(
            self._snapshot,
            rate=self.rate,
            in_flight=self._in_flight,
            waiting=self._waiting,
            duration=self.duration,
            total=self.total,
        )

    def render(self) -> RenderableType:
        """The rich renderable of the latest snapshot."""
        snapshot = self._snapshot
        if snapshot is None:
            return Text(f"{self.title}: starting…")
        progress, fraction = _progress(snapshot, self.duration, self.total)
        head = Table.grid(padding=(0, 2))
        cells: list[RenderableType] = [Text(self.title, style="bold")]
        if fraction is not None:
            cells.append(ProgressBar(total=1.0, completed=fraction, width=40))
        cells.append(Text(progress))
        for _ in cells:
            head.add_column()
        head.add_row(*cells)
        parts: list[RenderableType] = [head]
        failed = snapshot.failed
        parts.append(
            Text.assemble(
                f"started {snapshot.started:,}  ok ",
                (f"{snapshot.succeeded:,}", "green"),
                "  failed ",
                (f"{failed:,} ({_percent(failed, snapshot.completed)})", "red" if failed else ""),
                f"  cancelled {snapshot.cancelled:,}  missed starts {snapshot.missed_starts:,}",
            )
        )
        parts.append(
            Text(
                f"{self.rate:,.1f} flows/s (avg {snapshot.flows_per_second:,.1f})  "
                f"in flight {self._in_flight:,}  waiting for a slot {self._waiting:,}"
            )
        )
        parts.append(self._table(snapshot))
        parts.append(Text(_safe(f"errors: {_errors_text(snapshot)}")))
        return Group(*parts)

    def _table(self, snapshot: StatsSnapshot) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in ("step", "count", "ok", "errors", "retries", "p50 ms", "p95 ms", "p99 ms"):
            table.add_column(name, justify="left" if name == "step" else "right")
        for stat in (snapshot.flow, *snapshot.ordered_steps()):
            values = stat.percentiles(_LIVE_PERCENTILES)
            table.add_row(
                Text(_safe(stat.name), style="bold" if stat.name == FLOW else ""),
                f"{stat.count:,}",
                f"{stat.ok:,}",
                Text(f"{stat.errors:,}", style="red" if stat.errors else ""),
                f"{stat.retries:,}",
                *(_ms(values[p]) for p in _LIVE_PERCENTILES),
            )
        return table

    def _print_line(self) -> None:
        self._last_line = self.line()
        self.console.print(Text(self._last_line), soft_wrap=True, highlight=False)

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LiveView:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
