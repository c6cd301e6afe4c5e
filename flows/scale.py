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

from reconcile.config import Settings, load_settings
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


def dask_task_runner(settings: Settings):  # type: ignore[no-untyped-def]
    """The cluster named in config [scale] dask_address, or a local one of dask_workers processes."""
    from prefect_dask import DaskTaskRunner

    scale = settings.section("scale")
    if scale.get("dask_address"):
        return DaskTaskRunner(address=str(scale["dask_address"]))
    workers = int(scale.get("dask_workers", 2))
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})


@flow(name="reconcile-scaled-posting-run")
def scaled_posting_flow(db_url: str, config_dir: str | None = None, as_of: str | None = None,
                        actor: str = "system", partitions: int | None = None) -> dict[str, Any]:
    settings = load_settings(config_dir)
    scale = settings.section("scale")
    count = partitions or max(int(scale.get("partitions", 1)), 2 * int(scale.get("dask_workers", 2)))
    summary = service.run_posting(
        db.make_engine(db_url), settings=settings, as_of=date.fromisoformat(as_of) if as_of else None,
        actor=actor, partitions=count, mapper=_on_workers,
    )
    return summary.to_dict()


def run_scaled(db_url: str, config_dir: str | None = None, **parameters: Any) -> dict[str, Any]:
    """Run the scaled flow on the Dask cluster the configuration names."""
    runner = dask_task_runner(load_settings(config_dir))
    return scaled_posting_flow.with_options(task_runner=runner)(db_url=db_url, config_dir=config_dir, **parameters)
