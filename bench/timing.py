"""What the bench scripts share: the best of several timed runs (the bench scripts put the
repository root on ``sys.path`` and import ``bench.timing``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(the shortest wall time of ``repeat`` calls of ``fn``, in seconds; the last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
