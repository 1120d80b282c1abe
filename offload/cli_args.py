"""Argument types of the `offload` command line: every count, seed and duration is checked
against a range where it enters, so a bad value is one line and exit status 2.

The ranges are the kernel's field widths where a value goes to the kernel (``--repeat`` is
``bpf_attr.test.repeat``, a u32), and modelling choices elsewhere: a bound on how much work
one command may be asked to do, far above any run the project makes (the default runs use
2,000 to 100,000 packets), so that a typo like ``10**12`` is refused instead of running for
days or exhausting memory.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

from sim.scenario import MAX_HOST_CORES, MAX_PACKETS, MAX_SEED

U32_MAX = 0xFFFFFFFF
# Modelling choice: packets one VM / co-simulation run may be asked for (the VM executes
# ~1e4-1e5 packets/s, Icarus ~1e2-1e3: a million is already hours of co-simulation).
MAX_VM_PACKETS = 1_000_000
# Modelling choice: a solver time limit of at most a day, in seconds.
MAX_TIME_LIMIT_S = 86_400.0
# Modelling choice: worker processes of one command (the machine has a few cores).
MAX_JOBS = 256


class OneLineParser(argparse.ArgumentParser):
    """argparse with a usage error as one line (``offload sim: error: ...``) and exit
    status 2, like every other bad input; ``--help`` is unchanged."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a decimal integer in ``lo..hi``."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, "
                                             f"got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, "
                                             f"got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def float_range(lo: float, hi: float, *, lo_open: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number in ``(lo, hi]`` (``[lo, hi]`` if not lo_open)."""

    def parse(text: str) -> float:
        shown = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value) or value > hi or value < lo or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


seed = int_range(0, MAX_SEED)
vm_packets = int_range(1, MAX_VM_PACKETS)
sim_packets = int_range(1, MAX_PACKETS)
host_cores = int_range(1, MAX_HOST_CORES)
time_limit = float_range(0.0, MAX_TIME_LIMIT_S)
# BPF_PROG_TEST_RUN's bpf_attr.test.repeat is a u32: a larger count would be truncated
test_run_repeat = int_range(1, U32_MAX)
jobs = int_range(1, MAX_JOBS)
probability = float_range(0.0, 1.0, lo_open=False)

