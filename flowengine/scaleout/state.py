"""What the driver knows about each shard, its policies, and credentials moved between stores.

Ray is imported lazily (:func:`import_ray`): without it, ``--workers`` explains how to
install the extra. Shards that cannot share the scenario's SQLite file (another machine)
keep a file of their own: :func:`seed_records` gives each its users' records before the
run, :func:`import_records` writes back what they learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import attrs

from flowengine.credstore import SQLiteCredentials, open_store, record_from_dict, record_to_dict
from flowengine.errors import ConfigError
from flowengine.spec import Scenario
from flowengine.stats import StatsSnapshot

__all__ = [
    "CREDENTIAL_MODES",
    "CredentialMode",
    "LOSS_POLICIES",
    "LossPolicy",
    "STOP_MARGIN",
    "WorkerState",
    "import_ray",
    "import_records",
    "seed_records",
    "short_error",
]

#: What to do when a worker dies: let the others finish, or stop them.
LOSS_POLICIES: Final = ("continue", "stop")
#: Where shards keep credentials: ``shared`` (the scenario's store file, one machine),
#: ``per-worker`` (a file on the worker's node, imported by the driver at the end), or
#: ``auto`` (shared for workers on the driver's node, per-worker for the others).
CREDENTIAL_MODES: Final = ("auto", "shared", "per-worker")
#: Seconds past the grace period after which a worker that has not stopped is killed.
STOP_MARGIN: Final = 30.0

LossPolicy = Literal["continue", "stop"]
CredentialMode = Literal["auto", "shared", "per-worker"]
_INSTALL: Final = (
    "running on several workers needs Ray, which is not installed;"
    " install it with: pip install 'flowengine[ray]'"
)


def import_ray() -> Any:
    """The ``ray`` module, or ConfigError explaining how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(_INSTALL, path="--workers") from None
    return ray


@attrs.define(eq=False)
class WorkerState:
    """What the driver knows about one shard."""

    name: str
    scenario: Scenario
    actor: Any = None
    state: Literal["starting", "running", "finished", "lost", "failed"] = "starting"
    info: dict[str, Any] = attrs.Factory(dict)
    """pid, host and Ray node of the actor."""
    shares_store: bool = True
    """Whether the shard writes the scenario's store itself (else a file of its own)."""
    latest: StatsSnapshot | None = None
    """The last polled figures (no time series)."""
    final: StatsSnapshot | None = None
    """The figures the shard returned at its end (with the time series)."""
    meta: dict[str, Any] | None = None
    in_flight: int = 0
    waiting: int = 0
    max_in_flight: int = 0
    cpu_seconds: float | None = None
    """CPU seconds the worker process spent from its start-up answer to its end."""
    lost_flows: int = 0
    """Flows in flight at the last poll of a lost worker."""
    error: str | None = None
    store_dir: str | None = None
    records: list[dict[str, Any]] | None = None

    @property
    def snapshot(self) -> StatsSnapshot:
        """The shard's best figures: final, else the last polled, else empty."""
        return self.final or self.latest or StatsSnapshot.empty()

    @property
    def label(self) -> str:
        """The worker's name in reports (lost and failed ones say so)."""
        return self.name if self.state in ("finished", "running") else f"{self.name} ({self.state})"


def short_error(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def seed_records(workers: Sequence[WorkerState], spec: str) -> dict[str, list[dict[str, Any]]]:
    """Worker name -> its users' records in store ``spec``, for workers with their own file."""
    own = [w for w in workers if not w.shares_store]
    if not own:
        return {}
    owner: dict[str, str] = {}
    for worker in own:
        for user in worker.scenario.users.iter_users():
            owner[user.username] = worker.name
    seeds: dict[str, list[dict[str, Any]]] = {w.name: [] for w in own}
    store = open_store(spec)
    try:
        for record in store.all():
            name = owner.get(record.username)
            if name is not None:
                seeds[name].append(record_to_dict(record))
    finally:
        store.close()
    return seeds


def import_records(workers: Sequence[WorkerState], spec: str) -> int:
    """Write what workers with their own file sent back into store ``spec``; returns a count."""
    records = [
        record_from_dict(data)
        for worker in workers
        if not worker.shares_store
        for data in worker.records or ()
    ]
    if not records:
        return 0
    store = open_store(spec)
    try:
        if isinstance(store, SQLiteCredentials):
            return store.import_records(records)
        for record in records:
            store.put(record)
        return len(records)
    finally:
        store.close()
