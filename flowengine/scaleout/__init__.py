"""Scale-out on Ray: one scenario run as N shards (Ray async actors), one merged result.

``flowengine run SCENARIO --workers N`` splits the scenario (:mod:`.shards`), runs each
shard's :class:`~flowengine.runner.Runner` in a Ray actor (:mod:`.worker`) on a local Ray
instance started for the run or on an existing cluster (:mod:`.session`), and merges the
shards' figures while they run and at the end (:mod:`.driver`). Without ``--workers``
nothing here runs and Ray is never imported. Ray is the optional extra ``flowengine[ray]``.
See ``docs/scaleout.md``.
"""

from __future__ import annotations

from flowengine.scaleout.driver import ScaleOut
from flowengine.scaleout.session import ray_session, run_scaled
from flowengine.scaleout.shards import split_scenario
from flowengine.scaleout.state import CREDENTIAL_MODES, LOSS_POLICIES, WorkerState, import_ray
from flowengine.scaleout.worker import ShardWorker

__all__ = [
    "CREDENTIAL_MODES",
    "LOSS_POLICIES",
    "ScaleOut",
    "ShardWorker",
    "WorkerState",
    "import_ray",
    "ray_session",
    "run_scaled",
    "split_scenario",
]
