"""The driver of a scaled-out run: N shard actors, merged figures, lost workers, one result.

:class:`ScaleOut` needs Ray initialised (:func:`flowengine.scaleout.ray_session`). It starts
one :class:`~flowengine.scaleout.worker.ShardWorker` actor per shard (one CPU each, spread
over the cluster's nodes), polls each for its figures a few times per second, shows the
merged whole in the live view, and at the end merges the shards' final snapshots (counts
summed, HDR histograms added), evaluates the thresholds on the merged snapshot and writes
the reports with a row per worker.

A worker whose actor, process or node dies is *lost*: its figures up to its last poll stay
in the result, and the flows it had in flight at that poll are counted as lost
(``started = succeeded + failed + cancelled + lost``; what it did after its last poll, at most
one poll interval, is unknown). The policy decides what happens next: ``continue`` lets the
other workers finish, ``stop`` stops them gracefully. A run that lost a worker exits
``CRASH`` (unless interrupted): it did not apply the load it was asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs

from flowengine.credstore import ENV_KEY, open_store
from flowengine.errors import ConfigError, FlowEngineError
from flowengine.exitcodes import ExitCode
from flowengine.live import LiveView
from flowengine.report import write_reports
from flowengine.runner import DEFAULT_GRACE, Runner, RunResult, check_load_is_acknowledged
from flowengine.scaleout.shards import split_scenario
from flowengine.scaleout.state import (
    CREDENTIAL_MODES,
    LOSS_POLICIES,
    STOP_MARGIN,
    CredentialMode,
    LossPolicy,
    WorkerState,
    import_ray,
    import_records,
    seed_records,
    short_error,
)
from flowengine.scaleout.worker import ShardWorker
from flowengine.spec import Scenario
from flowengine.stats import StatsSnapshot, merge_snapshots
from flowengine.thresholds import evaluate, parse_thresholds

__all__ = ["ScaleOut"]


class ScaleOut:
    """Runs a scenario as ``workers`` Ray actors; :meth:`stop` and :meth:`abort` like Runner's."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        workers: int,
        report_dir: Path | None = None,
        live: LiveView | None = None,
        grace: float = DEFAULT_GRACE,
        on_worker_loss: LossPolicy = "continue",
        credentials: CredentialMode = "auto",
        poll_interval: float | None = None,
        start_timeout: float = 120.0,
        notify: Callable[[str], None] | None = None,
        address: str | None = None,
        acknowledge_load_test: bool = False,
    ) -> None:
        if not acknowledge_load_test:
            check_load_is_acknowledged(scenario)  # the whole load, not a shard's share
        if on_worker_loss not in LOSS_POLICIES:
            raise ConfigError(f"expected one of {LOSS_POLICIES}", path="--on-worker-loss")
        if credentials not in CREDENTIAL_MODES:
            raise ValueError(f"credentials must be one of {CREDENTIAL_MODES}, got {credentials!r}")
        shards = split_scenario(scenario, workers)
        self.scenario = attrs.evolve(scenario, credentials=shards[0].credentials)
        self.workers = [WorkerState(f"w{i}", shard) for i, shard in enumerate(shards, 1)]
        self.report_dir = report_dir
        self.live = live
        self.grace = grace
        self.on_worker_loss: LossPolicy = on_worker_loss
        self.credentials: CredentialMode = credentials
        self.poll_interval = poll_interval or (0.25 if live is not None else 0.5)
        self.start_timeout = start_timeout
        self.address = address
        self._notify = notify or (lambda message: None)
        self._interrupted = False
        self._stopping = False
        self._failure: BaseException | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._started = False

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every shard (each Runner.stop); flows in flight get the grace period."""
        self._interrupted = True
        self._stop_all("stop")

    def abort(self) -> None:
        """Stop every shard at once (each Runner.abort)."""
        self._interrupted = True
        self._stop_all("abort")

    def _stop_all(self, how: Literal["stop", "abort"]) -> None:
        first = not self._stopping
        self._stopping = True
        for worker in self.workers:
            if worker.actor is not None and worker.state in ("starting", "running"):
                self._spawn(self._call(worker, how))
        if first:
            self._spawn(self._kill_late(self.grace + STOP_MARGIN))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _call(self, worker: WorkerState, method: str) -> None:
        ray = import_ray()
        with contextlib.suppress(ray.exceptions.RayError):
            await getattr(worker.actor, method).remote()

    async def _kill_late(self, after: float) -> None:
        """Kill the workers that have not finished ``after`` seconds into a stop."""
        await asyncio.sleep(after)
        ray = import_ray()
        for worker in self.workers:
            if worker.state == "running":
                self._notify(f"worker {worker.name} did not stop within {after:.0f} s: killed")
                ray.kill(worker.actor, no_restart=True)

    # -- the run --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one actor per shard and wait until each answers (ConfigError if they cannot)."""
        if self._started:
            return
        self._started = True
        ray = import_ray()
        if not ray.is_initialized():
            raise RuntimeError("Ray is not initialised: use flowengine.scaleout.ray_session")
        actor_class = ray.remote(ShardWorker)
        # A joined cluster's workers do not inherit this environment: pass the store's key.
        key = os.environ.get(ENV_KEY)
        runtime_env = None
        if self.address is not None and key is not None:
            runtime_env = {"env_vars": {ENV_KEY: key}}
        for worker in self.workers:
            worker.actor = actor_class.options(
                num_cpus=1,
                max_restarts=0,
                max_task_retries=0,
                scheduling_strategy="SPREAD",
                runtime_env=runtime_env,
            ).remote(worker.scenario, worker.name, grace=self.grace)
        try:
            async with asyncio.timeout(self.start_timeout):
                infos = await asyncio.gather(*(w.actor.info.remote() for w in self.workers))
        except TimeoutError:
            self._kill_all()
            raise ConfigError(
                f"{len(self.workers)} workers did not start within {self.start_timeout:.0f} s;"
                f" the Ray cluster needs {len(self.workers)} free CPUs",
                path="--workers",
            ) from None
        except ray.exceptions.RayError as exc:
            self._kill_all()
            raise RuntimeError(f"a worker could not start: {short_error(exc)}") from exc
        # Through Ray Client (ray://) this process is on no node of the cluster.
        client = (self.address or "").startswith("ray://")
        here = None if client else ray.get_runtime_context().get_node_id()
        memory = self.scenario.credentials in ("", "memory", "memory://")
        for worker, info in zip(self.workers, infos, strict=True):
            worker.info = info
            worker.shares_store = (
                memory
                or self.credentials == "shared"
                or (self.credentials == "auto" and info["node_id"] == here)
            )

    def _kill_all(self) -> None:
        ray = import_ray()
        for worker in self.workers:
            if worker.actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(worker.actor, no_restart=True)

    async def run(self) -> RunResult:
        """Run every shard to its end (or a stop); merge, evaluate thresholds, write reports."""
        started_at = datetime.datetime.now(datetime.UTC)
        open_store(self.scenario.credentials).close()  # a bad store fails before any actor
        await self.start()
        seeds = seed_records(self.workers, self.scenario.credentials)
        live = self.live
        poller: asyncio.Task[None] | None = None
        deadline = self._deadline()
        try:
            if live is not None:
                live.start()
            runs = [
                asyncio.create_task(self._run_worker(w, seeds.get(w.name))) for w in self.workers
            ]
            poller = asyncio.create_task(self._poll_forever())
            async with asyncio.timeout(deadline):
                await asyncio.gather(*runs)
        except TimeoutError:
            raise RuntimeError("the workers did not finish in time; see Ray's logs") from None
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            self._kill_all()
            if live is not None:
                self._show()
                live.stop()
        if self._failure is not None:
            raise self._failure
        import_records(self.workers, self.scenario.credentials)
        return self._finish(started_at)

    def _deadline(self) -> float | None:
        """Seconds after which a run with a duration must be over (stops come before)."""
        load = self.scenario.load
        assert load is not None
        if load.duration is None:
            return None
        return load.duration + 2 * (self.grace + STOP_MARGIN) + self.start_timeout

    async def _run_worker(self, worker: WorkerState, seed: list[dict[str, Any]] | None) -> None:
        ray = import_ray()
        worker.state = "running"
        try:
            answer = await worker.actor.run.remote(seed)
        except ray.exceptions.RayTaskError as exc:
            worker.state = "failed"
            worker.error = short_error(exc)
            cause = getattr(exc, "cause", None)
            failure = cause if isinstance(cause, FlowEngineError | ValueError) else exc
            self._failure = self._failure or failure
            self._notify(f"worker {worker.name} failed: {worker.error}; stopping the others")
            self._stop_all("stop")
            return
        except ray.exceptions.RayError as exc:
            self._lost(worker, exc)
            return
        worker.final = StatsSnapshot.from_dict(answer["snapshot"])
        worker.meta = answer["meta"]
        worker.max_in_flight = answer["max_in_flight"]
        worker.cpu_seconds = answer["cpu_seconds"] - worker.info["cpu_seconds"]
        worker.records = answer.get("credentials")
        worker.in_flight = worker.waiting = 0
        worker.state = "finished"

    def _lost(self, worker: WorkerState, exc: BaseException) -> None:
        worker.state = "lost"
        worker.error = short_error(exc)
        worker.lost_flows = worker.snapshot.in_flight
        worker.in_flight = worker.waiting = 0
        where = f"{worker.info.get('host', '?')} pid {worker.info.get('pid', '?')}"
        running = sum(w.state == "running" for w in self.workers)
        then = "continuing with" if self.on_worker_loss == "continue" else "stopping"
        self._notify(
            f"worker {worker.name} ({where}) lost: {worker.error}; its {worker.lost_flows} flows"
            f" in flight are counted as lost; {then} {running} other worker(s)"
        )
        if worker.store_dir is not None:
            self._notify(
                f"worker {worker.name}'s credentials stay in {worker.store_dir} on {where}:"
                " merge them with SQLiteCredentials.import_records (docs/scaleout.md)"
            )
        if self.on_worker_loss == "stop":
            self._stop_all("stop")

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.gather(*(self._poll(w) for w in self.workers if w.state == "running"))
            self._show()
            await asyncio.sleep(self.poll_interval)

    async def _poll(self, worker: WorkerState) -> None:
        ray = import_ray()
        try:
            async with asyncio.timeout(max(5.0, 10 * self.poll_interval)):
                data = await worker.actor.progress.remote()
        except (TimeoutError, ray.exceptions.RayError):
            return  # a busy worker answers next time; a dead one is handled by its run
        if worker.state != "running" or data["snapshot"] is None:
            return
        worker.latest = StatsSnapshot.from_dict(data["snapshot"])
        worker.in_flight = data["in_flight"]
        worker.waiting = data["waiting"]
        worker.store_dir = data["store_dir"]

    def _show(self) -> None:
        live = self.live
        if live is None:
            return
        parts = [attrs.evolve(w.snapshot, series=()) for w in self.workers]
        live.update(
            merge_snapshots(parts),
            in_flight=sum(w.in_flight for w in self.workers),
            waiting=sum(w.waiting for w in self.workers),
        )

    # -- result ---------------------------------------------------------------------------

    def _finish(self, started_at: datetime.datetime) -> RunResult:
        per_worker = {w.label: w.snapshot for w in self.workers}
        merged = merge_snapshots(per_worker.values())
        lost = self.lost_workers
        if lost:
            self._notify(
                f"{len(lost)} of {len(self.workers)} workers lost"
                f" ({', '.join(w.name for w in lost)}): {self.lost_flows} flows counted as lost;"
                f" started {merged.started} = {merged.succeeded} succeeded + {merged.failed}"
                f" failed + {merged.cancelled} cancelled + {self.lost_flows} lost"
            )
        scenario = self.scenario
        thresholds = tuple(
            evaluate(parse_thresholds(scenario.thresholds, source=scenario.source), merged)
        )
        meta = self.meta(started_at, datetime.datetime.now(datetime.UTC))
        reports: dict[str, Path] = {}
        if self.report_dir is not None:
            reports = write_reports(
                self.report_dir, merged, meta, thresholds=thresholds, workers=per_worker
            )
        if self._interrupted:
            code = ExitCode.INTERRUPTED
        elif lost:
            code = ExitCode.CRASH
        elif not all(result.passed for result in thresholds):
            code = ExitCode.THRESHOLDS_FAILED
        else:
            code = ExitCode.OK
        return RunResult(
            snapshot=merged,
            thresholds=thresholds,
            reports=reports,
            exit_code=code,
            interrupted=self._interrupted,
            meta=meta,
        )

    @property
    def lost_workers(self) -> list[WorkerState]:
        """Workers whose actor, process or node died."""
        return [w for w in self.workers if w.state == "lost"]

    @property
    def lost_flows(self) -> int:
        """Flows in flight on lost workers at their last poll."""
        return sum(w.lost_flows for w in self.lost_workers)

    def meta(self, started_at: datetime.datetime, ended_at: datetime.datetime) -> dict[str, Any]:
        """The report's meta: the whole scenario's, plus a ``scaleout`` section per worker."""
        meta = Runner(self.scenario, acknowledge_load_test=True).meta(started_at, ended_at)
        metas = [w.meta for w in self.workers if w.meta is not None]
        meta["enrolled_in_run"] = sum(m.get("enrolled_in_run", 0) for m in metas)
        meta["interrupted"] = self._interrupted
        if self.scenario.target is None:
            meta["target"]["base_url"] = "one embedded emulator per worker"
        meta["scaleout"] = {
            "workers": len(self.workers),
            "ray_address": self.address or "local",
            "on_worker_loss": self.on_worker_loss,
            "lost_workers": [w.name for w in self.lost_workers],
            "lost_flows": self.lost_flows,
            "shards": [self._shard_meta(w) for w in self.workers],
        }
        return meta

    def _shard_meta(self, worker: WorkerState) -> dict[str, Any]:
        load = worker.scenario.load
        assert load is not None
        target = (worker.meta or {}).get("target", {})
        return {
            "name": worker.name,
            "state": worker.state,
            "host": worker.info.get("host"),
            "pid": worker.info.get("pid"),
            "node_id": worker.info.get("node_id"),
            "users": worker.scenario.users.count,
            "load": {"model": load.model, **attrs.asdict(load)},
            "base_url": target.get("base_url"),
            "credentials": "shared" if worker.shares_store else "per-worker",
            "store_dir": worker.store_dir if worker.state == "lost" else None,
            "max_in_flight": worker.max_in_flight,
            "cpu_seconds": worker.cpu_seconds,
            "lost_flows": worker.lost_flows,
            "error": worker.error,
        }
