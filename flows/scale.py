"""The posting run with matching spread over a Dask cluster (prefect-dask), one task per partition.

Only the decisions move to the workers: the partitions (match/partition.py)
share no customer, so they decide exactly what one process would. Reading the
book and posting stay in the flow's process, in the ledger's transactions;
exactly-once comes from the ledger, as in the daily flow.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from reconcile.config import Config, load_config
from reconcile.match import MatchResult
from reconcile.match.partition import Partition, decide_partition
from reconcile.services import daily as service
from reconcile.store import db


@task(name="match-partition", cache_policy=NO_CACHE)
def match_partition(part: Partition) -> MatchResult:
    return decide_partition(part)


def _on_workers(_fn: Any, parts: list[Partition]) -> list[MatchResult]:
    futures = match_partition.map(parts)
    return [future.result() for future in futures]


def dask_task_runner(config: Config):  # type: ignore[no-untyped-def]
    """The cluster named in config [scale] dask_address, or a local one of dask_workers processes."""
    from prefect_dask import DaskTaskRunner

    scale = config.scale
    if scale.dask_address:
        return DaskTaskRunner(address=scale.dask_address)
    workers = scale.dask_workers
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})


@flow(name="reconcile-scaled-posting-run")
def scaled_posting_flow(db_url: str, config_dir: str | None = None, as_of: str | None = None,
                        actor: str = "system", partitions: int | None = None) -> dict[str, Any]:
    config = load_config(config_dir)
    count = partitions or max(config.scale.partitions, 2 * config.scale.dask_workers)
    summary = service.run_posting(
        db.make_engine(db_url), config=config, as_of=date.fromisoformat(as_of) if as_of else None,
        actor=actor, partitions=count, mapper=_on_workers,
    )
    return summary.to_dict()


def run_scaled(db_url: str, config_dir: str | None = None, **parameters: Any) -> dict[str, Any]:
    """Run the scaled flow on the Dask cluster the configuration names."""
    runner = dask_task_runner(load_config(config_dir))
    return scaled_posting_flow.with_options(task_runner=runner)(db_url=db_url, config_dir=config_dir, **parameters)
