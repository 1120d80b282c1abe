"""Nothing left behind, whatever ends the process: SIGTERM, SIGKILL, a worker's parent dying.

- ``terminate_as_interrupt()``: SIGTERM (and SIGHUP) raise ``Terminated``, a
  ``KeyboardInterrupt``, so every ``finally`` / ``except BaseException`` that cleans up on
  Ctrl-C also runs when the process is asked to stop; the CLI exits 128 + the signal.
- ``die_with_parent()``: for forked pool workers, the kernel sends SIGKILL to the worker when
  its parent ends (``prctl(PR_SET_PDEATHSIG)``), so no worker outlives a killed command.
- ``Janitor``: folders a command creates temporarily are also given to a tiny watcher process
  reading a pipe from us. SIGKILL cannot be caught, but it closes the pipe: the watcher then
  removes what is left (and puts a previous report back if it was moved aside), then exits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1  # include/uapi/linux/prctl.h


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM / SIGHUP: cleanup runs as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise ``Terminated`` in the main thread (from
    another thread, where Python cannot set handlers, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, _raise_terminated) for sig in (signal.SIGTERM,
                                                                    signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def die_with_parent(parent_pid: int) -> None:
    """In a forked worker: SIGKILL when the parent ends; exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        return
    if os.getppid() != parent_pid:
        os._exit(1)


# The watcher: stdin closes (we exit, however) -> remove the paths; if RESTORE/TARGET are
# given and TARGET is missing while RESTORE exists, RESTORE goes back to TARGET first.
_WATCHER = r"""
import os, shutil, sys
sys.stdin.buffer.read()
paths = sys.argv[1:]
if paths and paths[0] == "--restore":
    _, restore, target, *paths = paths
    if os.path.exists(restore) and not os.path.exists(target):
        try:
            os.rename(restore, target)
        except OSError:
            pass
for p in paths:
    shutil.rmtree(p, ignore_errors=True)
"""


class Janitor:
    """Removes ``paths`` when this process ends, even by SIGKILL (see module docstring).
    ``restore``: (moved-aside copy, original place) to put back if the swap was cut short.
    Use as a context manager; leaving it removes what still exists."""

    def __init__(self, paths: list[Path], restore: tuple[Path, Path] | None = None) -> None:
        args = [str(p) for p in paths]
        if restore is not None:
            args = ["--restore", str(restore[0]), str(restore[1]), *args]
        # its own process group: a Ctrl-C or SIGTERM sent to our group must not stop it first
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", _WATCHER, *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     close_fds=True)

    def __enter__(self) -> Janitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Clean up now (the watcher removes what is left) and wait for it."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
