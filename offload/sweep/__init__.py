"""Design-space sweeps: programs x targets x hardware parameters x traffic, on Dask.

``load_spec`` reads and checks a sweep specification (``offload.sweep.spec``), ``run_sweep``
maps and simulates every point on a Dask cluster (a local one by default), reusing the
points already finished, and writes ``results.parquet``, ``summary.md`` and plots
(``offload.sweep.results``). ``dask_client`` / ``run_all`` (``offload.sweep.engine``) are
the engine other commands share for independent work.
"""

from offload.sweep.engine import dask_client, run_all
from offload.sweep.run import run_sweep
from offload.sweep.spec import load_spec

__all__ = ["dask_client", "load_spec", "run_all", "run_sweep"]
