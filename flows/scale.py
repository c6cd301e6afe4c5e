"""The posting run with matching spread over a Dask cluster (prefect-dask), one task per partition.

Only the decisions move to the workers: the partitions (match/partition.py)
share no customer, so they decide exactly what one process would. Reading the
book and posting stay in the flow's process, in the ledger's transactions;
exactly-once comes from the ledger, as in the daily flow. `dask_mapper` is what
`reconcile run --dask` and the served daily flow use: plain Dask futures, so the
workers need neither a Prefect server nor a database connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from reconcile.config import Config, load_config
from reconcile.core.errors import ReconcileError
from reconcile.match import MatchResult
from reconcile.match.partition import Mapper, Partition, decide_partition
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


def dask_setting(config: Config, given: str | None) -> str | None:
    """The cluster a run uses: --dask (an address or "local"), else [scale] dask_address, else none."""
    return given or config.scale.dask_address or None


def partitions_for(config: Config) -> int:
    """Enough partitions to keep every worker busy (at least [scale] partitions)."""
    return max(config.scale.partitions, 2 * config.scale.dask_workers)


@contextmanager
def dask_mapper(address: str, workers: int) -> Iterator[Mapper]:
    """A mapper deciding partitions on the Dask cluster at `address`, or on a local cluster of
    `workers` processes for "local"; closed (and a local cluster stopped) on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ReconcileError('Dask is not installed: pip install "reconcile[scale]"') from None
    cluster = None
    try:
        if address == "local":
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address, timeout="30s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ReconcileError(f"cannot reach the Dask scheduler at {address}: {exc} "
                             '(e.g. --dask tcp://scheduler:8786, or --dask local)') from None

    def on_cluster(fn: Any, parts: Iterable[Partition]) -> list[MatchResult]:
        return client.gather(client.map(fn, list(parts), pure=False))

    try:
        yield on_cluster
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
