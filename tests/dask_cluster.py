"""A dask.distributed scheduler and worker started for a test, as a user's cluster would be
(`dask scheduler` + `dask worker` processes), stopped afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT


@contextmanager
def external_dask(tmp_path: Path, workers: int = 1) -> Iterator[str]:
    """Yields the scheduler's address (tcp://127.0.0.1:PORT); loopback only."""
    dask_cli = Path(sys.executable).parent / "dask"
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(dask_cli), "scheduler", "--host", "127.0.0.1", "--port",
                               "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 120
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen(
            [str(dask_cli), "worker", "--scheduler-file", str(sched_file), "--nworkers",
             str(workers), "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
