"""One shard of a scaled-out run: a :class:`~flowengine.runner.Runner` inside a Ray async actor.

:class:`ShardWorker` is a plain class; the driver turns it into an actor with
``ray.remote(ShardWorker)``, so this module imports without Ray. Every method is a coroutine
on the actor's event loop: :meth:`ShardWorker.run` drives the shard to its end, while
:meth:`ShardWorker.progress`, :meth:`ShardWorker.stop` and :meth:`ShardWorker.abort` are
answered between its flows. Everything crossing the process boundary is plain data
(``StatsSnapshot.to_dict()``, credential records as dicts).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from flowengine.credstore import open_store, record_from_dict, record_to_dict
from flowengine.runner import DEFAULT_GRACE, Runner
from flowengine.spec import Scenario

__all__ = ["ShardWorker", "node_id"]


def node_id() -> str:
    """The Ray node this process runs on ('' outside Ray)."""
    try:
        import ray
    except ImportError:  # pragma: no cover - the actor exists only with Ray
        return ""
    return str(ray.get_runtime_context().get_node_id())


class ShardWorker:
    """Runs one shard scenario and answers progress questions while it runs."""

    def __init__(self, scenario: Scenario, name: str, *, grace: float = DEFAULT_GRACE) -> None:
        self.scenario = scenario
        self.name = name
        self.grace = grace
        self.runner: Runner | None = None
        self._stopped = False
        self._aborted = False
        self._local_dir: str | None = None

    async def info(self) -> dict[str, Any]:
        """Where the shard runs: name, pid, host, Ray node, and the process's CPU seconds."""
        return {
            "name": self.name,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node_id": node_id(),
            "cpu_seconds": time.process_time(),
        }

    async def run(self, seed: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """Run the shard to its end; returns its snapshot, meta, CPU seconds (records if seeded).

        ``seed`` None: the shard opens the scenario's credential store itself (the shared
        file on the driver's machine). A list (possibly empty): the shard keeps a store file
        of its own on its node, starts it with these records, and returns every record it
        holds at the end, for the driver to import.
        """
        scenario = self.scenario
        if seed is not None:
            scenario = attrs.evolve(scenario, credentials=self._local_store(seed))
        # The driver checked the whole load against the remote-load guard.
        runner = Runner(scenario, grace=self.grace, acknowledge_load_test=True)
        self.runner = runner
        if self._aborted:
            runner.abort()
        elif self._stopped:
            runner.stop()
        result = await runner.run()
        answer: dict[str, Any] = {
            "snapshot": result.snapshot.to_dict(),
            "meta": result.meta,
            "max_in_flight": runner.max_in_flight,
            "cpu_seconds": time.process_time(),
        }
        if seed is not None:
            store = open_store(scenario.credentials)
            try:
                answer["credentials"] = [record_to_dict(r) for r in store.all()]
            finally:
                store.close()
            # The driver imports them; a shard that dies keeps its file for a manual import.
            shutil.rmtree(self._local_dir or "", ignore_errors=True)
        return answer

    def _local_store(self, seed: Sequence[Mapping[str, Any]]) -> str:
        self._local_dir = tempfile.mkdtemp(prefix=f"flowengine-{self.name}-")
        spec = f"sqlite:///{Path(self._local_dir) / 'credentials.db'}"
        store = open_store(spec)
        try:
            for data in seed:
                store.put(record_from_dict(data))
        finally:
            store.close()
        return spec

    async def progress(self) -> dict[str, Any]:
        """The figures so far (no time series), flows in flight and waiting for a slot."""
        runner = self.runner
        if runner is None:
            return {"snapshot": None, "in_flight": 0, "waiting": 0, "store_dir": None}
        return {
            "snapshot": runner.stats.snapshot(series=False).to_dict(),
            "in_flight": runner.in_flight,
            "waiting": runner.waiting,
            "store_dir": self._local_dir,
        }

    async def stop(self) -> None:
        """Stop starting flows; flows in flight get the grace period."""
        self._stopped = True
        if self.runner is not None:
            self.runner.stop()

    async def abort(self) -> None:
        """Stop at once: flows in flight are cancelled."""
        self._aborted = True
        if self.runner is not None:
            self.runner.abort()
