"""The testbench base class: one object owns a DUT's clock, reset and cycle count."""

from __future__ import annotations

import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

CLOCK_PERIOD_NS = 4  # 250 MHz, the default clock_mhz (the value does not matter to results)


class TB:
    """Clock, reset and a cycle counter; subclasses add bus models and drive the DUT.

    ``cycle`` counts rising edges since the clock started; ``rng`` is a ``random.Random``
    seeded from the ``TB_SEED`` environment variable (default 1), so that a run is
    reproducible and another seed explores other vectors.
    """

    def __init__(self, dut, *, clock: str | None = "clk", reset: str | None = "rst",
                 period_ns: int = CLOCK_PERIOD_NS) -> None:
        self.dut = dut
        self.log = logging.getLogger(f"cocotb.tb.{type(self).__name__}")
        self.log.setLevel(logging.INFO)
        self.clk = getattr(dut, clock) if clock else None  # None: a combinational DUT
        self.rst = getattr(dut, reset) if reset else None
        self.cycle = 0
        self.seed = int(os.environ.get("TB_SEED", "1"))
        self.rng = random.Random(self.seed)
        if self.clk is not None:
            cocotb.start_soon(Clock(self.clk, period_ns, unit="ns").start())
            cocotb.start_soon(self._count())

    async def _count(self) -> None:
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1

    async def cycles(self, n: int = 1) -> None:
        """Wait for ``n`` rising edges."""
        for _ in range(n):
            await RisingEdge(self.clk)

    async def reset(self, cycles: int = 4) -> None:
        """Synchronous reset for ``cycles`` clock cycles; returns after the first free edge."""
        if self.rst is None:
            return
        self.rst.value = 1
        await self.cycles(cycles)
        self.rst.value = 0
        await self.cycles(1)

    async def settle(self) -> None:
        """Wait until the signals of this time step are final (read-only phase)."""
        await ReadOnly()

    @staticmethod
    def value(signal) -> int:
        """A signal's value as an int, unknown (x / z) bits read as 0: registers that never
        loaded (an idle unit's result) hold x in simulation."""
        text = str(signal.value).lower().replace("x", "0").replace("z", "0")
        return int(text, 2) if text else 0

    def check(self, what: str, actual: int, expected: int, **ctx: object) -> None:
        """Log expected against actual, then assert (one line names everything)."""
        where = " ".join(f"{k} {v}" for k, v in ctx.items())
        if actual != expected:
            self.log.error("%s 0x%x (expected 0x%x) %s", what, actual, expected, where)
        assert actual == expected, f"{what} 0x{actual:x} (expected 0x{expected:x}) {where}"
