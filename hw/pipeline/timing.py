"""Cycle-level timing of the pipe target (docs/pipeline.md, "Timing").

All numbers are cycles of the core clock (``target.clock_mhz``) unless a name says ns or s.
The rules, which the RTL implements cycle for cycle:

- input: a packet of L bytes occupies ``beats(L) = ceil(L * 8 / bus_bits)`` cycles of the
  input bus; packets follow back to back (or at their given arrival cycles).
- parser: the PHV is ready ``parser_cycles`` after the packet's first beat.
- admission: one PHV enters physical stage 0 per cycle, in arrival order, at the first
  cycle >= ready that no recirculating pass holds. A packet needing P passes reserves the
  entry slots ``admit + k * loop`` (k = 1..P-1), ``loop = num_stages * stage_cycles +
  recirc_cycles``: recirculation has priority over new packets.
- exit from the last stage after the last pass: ``admit + P * num_stages * stage_cycles +
  (P - 1) * recirc_cycles``; the deparser is done ``deparser_cycles`` later.
- output: the output bus carries ``beats(out_len)`` cycles per packet, in completion order.

Hence the initiation interval ``max(P, beats(L))`` for a stream of equal packets and the
latency ``parser_cycles + P * num_stages * stage_cycles + (P - 1) * recirc_cycles +
deparser_cycles`` without queueing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hw.pipeline.config import PipelineConfig, TargetParams, load_config


@dataclass(frozen=True)
class StageUse:
    """What one physical stage does, over all passes."""

    physical: int
    logical: tuple[int, ...]  # the logical stages it runs, pass by pass
    gateways: int
    tables: int
    ops: int
    stateful: int
    externs: int


@dataclass(frozen=True)
class SimResult:
    """Per packet cycles of a batch (index = packet), and the batch's sustained rate."""

    start: tuple[int, ...]  # first input beat
    admit: tuple[int, ...]  # entry into physical stage 0, first pass
    done: tuple[int, ...]  # deparser done
    out_end: tuple[int, ...]  # last output beat + 1
    latency_cycles: tuple[int, ...]  # done - start
    intervals: tuple[int, ...]  # admit[i] - admit[i-1], i >= 1
    sustained_ii: float  # cycles per packet on the busiest resource (input, entry, output)
    total_cycles: int  # first beat in .. last beat out

    @property
    def cycles_per_packet(self) -> tuple[int, ...]:
        return self.latency_cycles


class TimingModel:
    """Timing of one configuration on the target its document records."""

    def __init__(self, config: PipelineConfig | TargetParams | dict, passes: int | None = None
                 ) -> None:
        if isinstance(config, TargetParams):
            self.target = config
            self.config: PipelineConfig | None = None
            self.passes = passes or 1
        else:
            self.config = load_config(config)
            self.target = self.config.target
            self.passes = passes or self.config.num_passes

    @property
    def cycle_ns(self) -> float:
        return 1e6 / self.target.clock_khz

    @property
    def pass_cycles(self) -> int:
        """One pass through every physical stage."""
        return self.target.num_stages * self.target.stage_cycles

    @property
    def loop_cycles(self) -> int:
        """From a pass's entry into stage 0 to the next pass's entry."""
        return self.pass_cycles + self.target.recirc_cycles

    def beats(self, length: int) -> int:
        """Bus cycles of a ``length``-byte packet: ceil(length * 8 / bus_bits), at least 1."""
        return max(1, -(-length * 8 // self.target.bus_bits))

    def latency_cycles(self) -> int:
        """First input beat to deparser done, without queueing."""
        t = self.target
        return (t.parser_cycles + self.passes * self.pass_cycles
                + (self.passes - 1) * t.recirc_cycles + t.deparser_cycles)

    def latency_ns(self) -> float:
        return self.latency_cycles() * self.cycle_ns

    def initiation_interval(self, length: int = 64) -> int:
        """Cycles between packets of ``length`` bytes in a saturated stream."""
        return max(self.passes, self.beats(length))

    def packets_per_second(self, length: int = 64) -> float:
        return self.target.clock_khz * 1000 / self.initiation_interval(length)

    def throughput_gbps(self, length: int = 64) -> float:
        """Packet bits per second (no Ethernet preamble or gap), Gb/s."""
        return self.packets_per_second(length) * length * 8 / 1e9

    def stage_occupancy(self) -> list[StageUse]:
        """Per physical stage: the logical stages it runs and their resource counts."""
        t = self.target
        stages = self.config.stages if self.config is not None else ()
        out = []
        for ph in range(t.num_stages):
            logical = tuple(range(ph, len(stages), t.num_stages))
            sts = [stages[i] for i in logical]
            out.append(StageUse(ph, logical, sum(len(s.gateways) for s in sts),
                                sum(len(s.tables) for s in sts), sum(len(s.ops) for s in sts),
                                sum(len(s.stateful) for s in sts),
                                sum(len(s.externs) for s in sts)))
        return out

    def simulate(self, lengths: Sequence[int], arrivals: Sequence[int] | None = None,
                 out_lengths: Sequence[int] | None = None) -> SimResult:
        """Cycle-level run of a batch: ``lengths`` in bytes, optional arrival cycles."""
        t = self.target
        n = len(lengths)
        out_lengths = list(out_lengths) if out_lengths is not None else list(lengths)
        p = self.passes
        reserved: set[int] = set()
        recirc_slots: list[int] = []
        start, admit, done = [], [], []
        bus_free = 0
        last_admit = -1
        for i, length in enumerate(lengths):
            s = max(bus_free, arrivals[i] if arrivals is not None else 0)
            bus_free = s + self.beats(length)
            a = max(s + t.parser_cycles, last_admit + 1)
            while a in reserved:
                a += 1
            reserved.discard(a)
            for k in range(1, p):
                reserved.add(a + k * self.loop_cycles)
                recirc_slots.append(a + k * self.loop_cycles)
            last_admit = a
            start.append(s)
            admit.append(a)
            done.append(a + p * self.pass_cycles + (p - 1) * t.recirc_cycles
                        + t.deparser_cycles)
        out_end = [0] * n
        free = 0
        for i in sorted(range(n), key=lambda i: (done[i], i)):
            begin = max(done[i], free)
            free = out_end[i] = begin + self.beats(out_lengths[i])
        if n:
            in_span = bus_free - start[0]
            # entry slots: idle ones between the first and last admission, plus every
            # slot the batch's passes use (the drain after the last admission is not idle)
            window = admit[-1] + 1 - admit[0]
            busy = n + sum(1 for r in recirc_slots if r <= admit[-1])
            slot_span = window - busy + n * p
            out_busy = sum(self.beats(x) for x in out_lengths)
            sustained = max(in_span, slot_span, out_busy) / n
            total = max(out_end) - start[0]
        else:
            sustained, total = 0.0, 0
        return SimResult(tuple(start), tuple(admit), tuple(done), tuple(out_end),
                         tuple(d - s for d, s in zip(done, start, strict=True)),
                         tuple(admit[i] - admit[i - 1] for i in range(1, n)), sustained, total)
