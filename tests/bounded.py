"""Run many small cases in a forked child with a memory limit and a per-case watchdog.

The fuzz tests (tests/offload/test_cli_fuzz.py, tests/ebpf/test_object_fuzz.py) feed
thousands of hostile inputs to the real code. Each case must end in a result or one clean
error; none may hang or exhaust memory. Running them in the pytest process would let one bad
case take the test run down with it, and a fork per case costs more than the cases; so one
child runs a batch:

- its address space is limited (``RLIMIT_AS``: what it has at the fork plus ``mem_bytes``),
  so a case that allocates what an object merely declares fails with MemoryError, which
  counts as a crash of that case, instead of swapping the machine;
- each case runs under an interval timer (``case_timeout_s``): a case still running when it
  fires is reported as a hang, and the child goes on with the next case;
- the parent is the watchdog of last resort: when no case finishes for twice the budget
  (a loop in C that never returns to Python), it kills the child, reports the case in
  flight as a hang and starts a new child for the rest.

The budgets are generous (seconds for work that takes milliseconds): they bound a failure,
they do not measure speed. Each case's outcome is ``Outcome(kind, detail)``: ``kind`` is
what ``classify`` returned, or ``"crash"`` (an exception it did not accept, with the last
traceback line), ``"hang"`` or ``"died"`` (the child ended without a word).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    index: int
    kind: str
    detail: str = ""


class _Hang(BaseException):
    """Raised in the child by the interval timer; a BaseException so `except Exception`
    in the code under test does not swallow it."""


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(write_fd: int, run: Callable[[Any], str], cases: Sequence[Any], start: int,
           case_timeout_s: float, mem_bytes: int) -> None:
    limit = _vm_size() + mem_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Hang()

    signal.signal(signal.SIGALRM, on_alarm)
    out = os.fdopen(write_fd, "w", buffering=1)
    for i in range(start, len(cases)):
        signal.setitimer(signal.ITIMER_REAL, case_timeout_s)
        try:
            kind, detail = run(cases[i]), ""
        except _Hang:
            kind, detail = "hang", f"still running after {case_timeout_s:g} s"
        except BaseException as exc:  # noqa: BLE001 - the point: report anything else
            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
            kind, detail = "crash", f"{type(exc).__name__} at {where}: {exc}"[:500]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.write(json.dumps([i, kind, detail]) + "\n")
    out.close()


def run_bounded(run: Callable[[Any], str], cases: Sequence[Any], *, case_timeout_s: float,
                mem_bytes: int = 1 << 30) -> list[Outcome]:
    """``run(case)`` for every case in forked children; one Outcome per case, in order.
    ``run`` returns a short word for an accepted result ("ok", "error", ...) and raises
    for anything it does not accept."""
    outcomes: list[Outcome] = []
    start = 0
    while start < len(cases):
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 0
            try:
                os.close(read_fd)
                _child(write_fd, run, cases, start, case_timeout_s, mem_bytes)
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        os.close(write_fd)
        buf = b""
        last = time.monotonic()
        with os.fdopen(read_fd, "rb") as pipe:
            while True:
                ready, _, _ = select.select([pipe], [], [], 1.0)
                if ready:
                    chunk = os.read(pipe.fileno(), 65536)
                    if not chunk:
                        break
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        i, kind, detail = json.loads(line)
                        outcomes.append(Outcome(i, kind, detail))
                        start = i + 1
                    if lines:
                        last = time.monotonic()
                elif time.monotonic() - last > 2 * case_timeout_s + 5:
                    os.kill(pid, signal.SIGKILL)
                    break
        _, status = os.waitpid(pid, 0)
        if start < len(cases) and (not outcomes or outcomes[-1].index != start):
            why = "hang" if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL \
                else "died"
            outcomes.append(Outcome(start, why, f"child status {status}"))
            start += 1
    return outcomes


def failures(outcomes: Sequence[Outcome], accepted: set[str]) -> list[Outcome]:
    """The outcomes whose kind is not an accepted one."""
    return [o for o in outcomes if o.kind not in accepted]
