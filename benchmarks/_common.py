"""Helpers shared by the benchmark scripts: pinning, CPU time of a process, setup and tables.

Every benchmark answers one question, prints its setup, a table, and writes JSON
(STYLE.md habit 14). These helpers keep that uniform:

* :func:`pick_cpus` / :func:`pin` - choose distinct cores for a server and its load generator
  and pin the calling process (``os.sched_setaffinity``; a no-op where unsupported);
* :func:`process_cpu_seconds` - user + system CPU seconds of any pid (``/proc/<pid>/stat``),
  :func:`own_cpu_seconds` for the calling process;
* :func:`core_busy_seconds` - busy seconds of one core, whoever ran there (``/proc/stat``):
  minus the pinned process's own CPU, it tells how much other work shared the core;
* :func:`run_loop` - run a coroutine on uvloop when installed (and say which loop ran it);
* :func:`setup_info` / :func:`print_setup` - CPU model, cores, Python and library versions;
* :func:`print_table` and :func:`write_json` - the output every script ends with.

Import it from a script in this folder as ``import _common`` (the script's folder is on
``sys.path`` when the script runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "CLOCK_TICKS",
    "available_cpus",
    "core_busy_seconds",
    "fmt",
    "own_cpu_seconds",
    "pick_cpus",
    "pin",
    "print_setup",
    "print_table",
    "process_cpu_seconds",
    "run_loop",
    "setup_info",
    "uvloop_version",
    "write_json",
]

T = TypeVar("T")

#: Clock ticks per second of ``/proc/<pid>/stat`` times (usually 100).
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available_cpus() -> list[int]:
    """The cores this process may run on, sorted."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pick_cpus(count: int) -> list[int | None]:
    """``count`` distinct cores for the processes of a benchmark (server first).

    Returns None entries (no pinning) when fewer cores than ``count`` are available or the
    platform cannot pin.
    """
    cpus = available_cpus()
    if not hasattr(os, "sched_setaffinity") or len(cpus) < count:
        return [None] * count
    return list(cpus[:count])


def pin(cpu: int | None) -> str:
    """Pin the calling process to ``cpu`` (None: leave it); returns a description."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    os.sched_setaffinity(0, {cpu})
    return f"cpu {cpu}"


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads).

    Reads ``/proc/<pid>/stat`` (Linux, resolution one clock tick, usually 10 ms); for the
    calling process without ``/proc``, falls back to :func:`own_cpu_seconds`.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if pid == os.getpid():
            return own_cpu_seconds()
        raise
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def core_busy_seconds(cpu: int | None) -> float | None:
    """Seconds core ``cpu`` has spent busy (not idle or iowait) since boot; None if unknown."""
    if cpu is None:
        return None
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    prefix = f"cpu{cpu} "
    for line in lines:
        if line.startswith(prefix):
            ticks = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            busy = sum(ticks[:8]) - ticks[3] - ticks[4]
            return busy / CLOCK_TICKS
    return None


def own_cpu_seconds() -> float:
    """User + system CPU seconds of the calling process (``os.times``)."""
    times = os.times()
    return times.user + times.system


def uvloop_version() -> str | None:
    """uvloop's version when it is installed, else None."""
    try:
        return importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        return None


def run_loop(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """Run ``main`` to completion on uvloop when installed and wanted, else asyncio's loop."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            result: T = uvloop.run(main)
            return result
    return asyncio.run(main)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def setup_info(
    packages: Iterable[str] = ("aiohttp", "uvloop", "orjson", "cryptography"),
    **extra: Any,
) -> dict[str, Any]:
    """The machine and software a benchmark ran on, plus ``extra`` entries."""
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpus_online": os.cpu_count(),
        "cpus_available": available_cpus(),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "argv": sys.argv,
        "versions": {name: _version(name) for name in packages},
    }
    info.update(extra)
    return info


def print_setup(title: str, info: dict[str, Any]) -> None:
    """Print ``info`` as ``key: value`` lines under ``title``."""
    print(title)
    for key, value in info.items():
        if key == "argv":
            value = " ".join(value)
        elif key == "versions":
            value = ", ".join(f"{k} {v or 'not installed'}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        print(f"  {key}: {value}")
    print()


def fmt(value: Any, digits: int = 0) -> str:
    """A table cell: floats with ``digits`` decimals and thousands separators, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` (parents created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
