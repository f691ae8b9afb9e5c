"""Ray for the length of one run: a local instance started for it, or an existing cluster.

:func:`run_scaled` is what ``flowengine run --workers N`` calls: it checks that Ray is
installed (ConfigError with the ``pip install`` line if not), splits the scenario, starts
or joins Ray (:func:`ray_session`), runs a :class:`~flowengine.scaleout.driver.ScaleOut`
with Ctrl-C / SIGTERM handled like a single-process run (first: stop every shard
gracefully; second: at once), and shuts Ray down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from flowengine.errors import ConfigError
from flowengine.live import LiveView
from flowengine.runner import DEFAULT_GRACE, RunResult
from flowengine.scaleout.driver import ScaleOut
from flowengine.scaleout.state import CredentialMode, LossPolicy, import_ray
from flowengine.signals import run_with_signals
from flowengine.spec import Scenario

__all__ = ["OBJECT_STORE_BYTES", "ray_session", "run_scaled"]

#: Object store of a local instance: shards exchange a few KB per poll, never large objects.
OBJECT_STORE_BYTES: Final = 100 * 1024 * 1024


@contextlib.contextmanager
def ray_session(*, workers: int, address: str | None = None) -> Iterator[Any]:
    """Ray initialised for one run, shut down after; yields the ``ray`` module.

    ``address`` None starts a local instance with ``workers`` CPUs (logical: one per shard),
    no dashboard, a small object store, and workers at normal priority (Ray's default is
    nice 15); an address (or ``auto``) joins that cluster as it is configured.
    """
    ray = import_ray()
    common: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "namespace": "flowengine",
    }
    try:
        if address is None:
            ray.init(
                address="local",
                num_cpus=workers,
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                # Ray starts workers at nice 15 (behind its daemons); a shard is the work.
                _system_config={"worker_niceness": 0},
                **common,
            )
        else:
            ray.init(address=address, **common)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"cannot join Ray at {address!r}: {exc}", path="--ray-address") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_scaled(
    scenario: Scenario,
    *,
    workers: int,
    address: str | None = None,
    on_worker_loss: LossPolicy = "continue",
    credentials: CredentialMode = "auto",
    report_dir: Path | None = None,
    live: LiveView | None = None,
    grace: float = DEFAULT_GRACE,
    notify: Callable[[str], None] | None = None,
    acknowledge_load_test: bool = False,
) -> RunResult:
    """Run ``scenario`` as ``workers`` shards on Ray (see the module docstring)."""
    import_ray()
    scale = ScaleOut(
        scenario,
        workers=workers,
        report_dir=report_dir,
        live=live,
        grace=grace,
        on_worker_loss=on_worker_loss,
        credentials=credentials,
        notify=notify,
        address=address,
        acknowledge_load_test=acknowledge_load_test,
    )
    with ray_session(workers=workers, address=address):
        return asyncio.run(run_with_signals(scale))
