"""AXI-Stream helpers over cocotbext-axi: sources, sinks, idle and back-pressure, beat timing."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def random_pause(rng: random.Random, probability: float) -> Iterator[bool]:
    """Pause generator for cocotbext-axi: True (idle / not ready) with ``probability``."""
    while True:
        yield rng.random() < probability


def make_source(dut, prefix: str, clk, rst, *, rng: random.Random | None = None,
                idle: float = 0.0) -> AxiStreamSource:
    """An AxiStreamSource on ``<prefix>_t*``; idle cycles (tvalid low) with probability idle."""
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, prefix), clk, rst)
    src.log.setLevel(logging.WARNING)  # not every frame
    if idle and rng is not None:
        src.set_pause_generator(random_pause(rng, idle))
    return src


def make_sink(dut, prefix: str, clk, rst, *, rng: random.Random | None = None,
              backpressure: float = 0.0) -> AxiStreamSink:
    """An AxiStreamSink on ``<prefix>_t*``; tready low with probability backpressure."""
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, prefix), clk, rst)
    sink.log.setLevel(logging.WARNING)
    if backpressure and rng is not None:
        sink.set_pause_generator(random_pause(rng, backpressure))
    return sink


def frame(data: bytes, tuser: int | None = None) -> AxiStreamFrame:
    return AxiStreamFrame(data, tuser=tuser)


@dataclass
class BeatMonitor:
    """Cycles of the first beat of every frame on a stream (tvalid & tready at an edge).

    ``first`` lists the cycle numbers (rising edges counted from the monitor's start) of
    each frame's first beat, ``beats`` the number of beats per frame: what the timing model
    calls ``start`` (input) and ``done`` / output-bus occupancy (output); ``stamps`` the
    value of a DUT counter in the cycle of each first beat. Signals are read right after
    the rising edge: the values the DUT sampled.
    """

    dut: object
    prefix: str
    clk: object
    stamp: object | None = None  # a DUT counter to record at each first beat
    first: list[int] = field(default_factory=list)
    beats: list[int] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)

    def start(self) -> BeatMonitor:
        cocotb.start_soon(self._run())
        return self

    async def _run(self) -> None:
        valid = getattr(self.dut, f"{self.prefix}_tvalid")
        ready = getattr(self.dut, f"{self.prefix}_tready")
        last = getattr(self.dut, f"{self.prefix}_tlast")
        cycle = 0
        in_frame = False
        while True:
            await RisingEdge(self.clk)
            cycle += 1
            if str(valid.value) == "1" and str(ready.value) == "1":
                if not in_frame:
                    self.first.append(cycle)
                    self.beats.append(0)
                    if self.stamp is not None:
                        self.stamps.append(int(self.stamp.value))
                self.beats[-1] += 1
                in_frame = str(last.value) != "1"
