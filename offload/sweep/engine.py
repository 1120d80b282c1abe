"""The engine that runs independent work: Dask, on this machine or on a cluster.

``dask_client(scheduler, workers)`` gives a ``distributed.Client``: with ``scheduler`` None a
``LocalCluster`` of ``workers`` processes (one thread each: the simulator and the solver are
CPU-bound Python), started here and stopped on the way out, so nothing is installed or
started by hand; with ``scheduler`` (``tcp://HOST:8786``) the user's running cluster, whose
workers must import this project and see the same files.

``run_all`` submits one task per item and yields each outcome as it finishes, so the caller
can write results as they arrive (nothing lost when the run is interrupted). A worker that
dies mid-task is replaced and its task re-run by Dask's scheduler; a task that raises is an
outcome with its error, never the end of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from offload.errors import SweepError

# Dask's own retry budget for a task whose worker died (distributed.scheduler.allowed-failures
# is 3 by default); a task killed more often than this is reported as failed.
ALLOWED_FAILURES = 3


@dataclass
class Outcome:
    index: int
    result: Any = None
    error: str | None = None


def describe(scheduler: str | None, workers: int) -> str:
    """The engine in words, for the outputs that state it."""
    return (f"dask scheduler {scheduler}" if scheduler
            else f"dask LocalCluster, {workers} worker process{'es' * (workers != 1)}")


def error_text(exc: BaseException) -> str:
    """One line: a package error's own message; anything else with its type (our bug)."""
    from ebpf.errors import EbpfError
    from hw.errors import HwError
    from offload.errors import MapperError
    from sim.errors import SimError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (EbpfError, HwError, SimError, MapperError)):
        return text
    return f"internal error: {type(exc).__name__}: {text}"


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A Dask client on a local cluster of ``workers`` processes, or on ``scheduler``."""
    import dask
    from distributed import Client, LocalCluster

    if workers < 1:
        raise SweepError(f"--workers: expected at least 1, got {workers}")
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "distributed.worker.daemon": False}):
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise SweepError(f"--scheduler {scheduler}: cannot connect: {exc}") from exc
            try:
                yield client
            finally:
                client.close()
            return
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()


def run_all(client: Any, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]],
            keys: Sequence[str]) -> Iterator[Outcome]:
    """``fn(*item)`` for each item on the cluster, yielded as each finishes (any order).

    ``keys`` name the tasks (unique; a content hash keeps two sweeps' tasks apart)."""
    from distributed import as_completed

    if not items:
        return
    futures = [client.submit(fn, *item, key=f"offload-{key}", pure=False)
               for item, key in zip(items, keys, strict=True)]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for future in as_completed(futures):
            i = index[future.key]
            try:
                yield Outcome(i, result=future.result())
            except Exception as exc:  # noqa: BLE001 - a failed task is a row, not an abort
                yield Outcome(i, error=error_text(exc))
    finally:
        for future in futures:
            future.cancel()
