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
- buffers (``BufferDepths``, derived as pipe_top derives them): an input beat waits while
  a buffer it needs is full: the first beat while ``packets`` packets are in flight (a
  packet counts from its first beat until its last output beat), a payload beat (beat
  index >= ``window_bytes // (bus_bits / 8)``) while the payload FIFO holds ``payload``
  beats (freed as the output bus sends the same beat positions), any beat while
  ``windows`` window records wait for admission. The stream's later packets start later;
  admission and output follow from the delayed starts by the rules above.

Hence the initiation interval ``max(P, beats(L))`` for a stream of equal packets and the
latency ``parser_cycles + P * num_stages * stage_cycles + (P - 1) * recirc_cycles +
deparser_cycles`` without queueing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


def pow2_at_least(value: int) -> int:
    """The smallest power of two >= ``value``, at least 2 (pipe_top's ``pow2_at_least``)."""
    p = 2
    while p < value:
        p *= 2
    return p


@dataclass(frozen=True)
class BufferDepths:
    """pipe_top's finite buffers (docs/pipeline.md section 8.1), as the RTL derives them.

    ``packets`` (OUT_DEPTH): packets in flight, the credits; a packet takes one at its
    first input beat and returns it when the deparser sends its last output beat.
    ``payload`` (PAY_DEPTH): beats of the payload FIFO, the input beats past the window.
    ``windows``: the parser's window records waiting for admission (WINDOW_FIFO_DEPTH:
    ``packets`` for several passes, else 8, 16 or 32 by ``parser_cycles``).
    """

    packets: int
    payload: int
    windows: int

    @classmethod
    def derive(cls, target: TargetParams, passes: int, out_fifo_depth: int = 0,
               payload_fifo_depth: int = 0) -> BufferDepths:
        """pipe_top's localparams: OUT_DEPTH = OUT_FIFO_DEPTH or pow2_at_least(LATENCY +
        8), PAY_DEPTH = PAYLOAD_FIFO_DEPTH or the same, the parser's REC_DEPTH. A depth
        given (> 0) must be a power of two >= 2, as pipe_fifo requires."""
        for name, d in (("out_fifo_depth", out_fifo_depth),
                        ("payload_fifo_depth", payload_fifo_depth)):
            if d < 0 or d == 1 or d & (d - 1):
                raise ValueError(f"{name} {d}: 0 (automatic) or a power of two >= 2")
        latency = (target.parser_cycles + passes * target.num_stages * target.stage_cycles
                   + (passes - 1) * target.recirc_cycles + target.deparser_cycles)
        auto = pow2_at_least(latency + 8)
        packets = out_fifo_depth or auto
        pc = target.parser_cycles
        windows = packets if passes > 1 else 8 if pc < 7 else 16 if pc < 15 else 32
        return cls(packets, payload_fifo_depth or auto, windows)


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
    in_end: tuple[int, ...] = field(default=())  # last input beat + 1 (later when stalled)

    @property
    def cycles_per_packet(self) -> tuple[int, ...]:
        return self.latency_cycles


class TimingModel:
    """Timing of one configuration on the target its document records."""

    def __init__(self, config: PipelineConfig | TargetParams | dict, passes: int | None = None,
                 *, out_fifo_depth: int = 0, payload_fifo_depth: int = 0) -> None:
        """``out_fifo_depth`` and ``payload_fifo_depth``: pipe_top's OUT_FIFO_DEPTH and
        PAYLOAD_FIFO_DEPTH parameters (0: derived from the latency, as in the RTL)."""
        if isinstance(config, TargetParams):
            self.target = config
            self.config: PipelineConfig | None = None
            self.passes = passes or 1
        else:
            self.config = load_config(config)
            self.target = self.config.target
            self.passes = passes or self.config.num_passes
        self.buffers = BufferDepths.derive(self.target, self.passes, out_fifo_depth,
                                           payload_fifo_depth)

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
        """Cycle-level run of a batch: ``lengths`` in bytes, optional arrival cycles (the
        first beat is offered then, or once the previous packet's last beat is in).

        Every input beat is accepted at the first cycle every buffer it needs has room
        (``BufferDepths``; pipe_parser's s_axis_tready):

        - the first beat of packet i: fewer than ``packets`` in flight, i.e. packet
          i - packets has its last output beat on the bus (the deparser pops its record
          with that beat's emission, the credit returns the cycle after);
        - a payload beat (index >= K0 = window_bytes // bytes per beat): the payload
          FIFO's write number w - ``payload`` has been read, i.e. the output beat that used
          it is on the bus; the output beat at index b reads input beat b (the byte
          positions of the input; unused beats are read after the packet's last beat);
        - any beat: the window record number m - ``windows`` (m records pushed before it;
          a packet pushes its record with beat min(window beats, beats) - 1) has left for
          the PHV register.

        The PHV is ready ``parser_cycles`` after the first beat, and at least two cycles
        after the record's beat. An output beat that reads a payload beat leaves at least
        two cycles after that beat came in.
        """
        t = self.target
        buf = self.buffers
        n = len(lengths)
        out_lengths = list(out_lengths) if out_lengths is not None else list(lengths)
        p = self.passes
        k0 = t.window_bytes // (t.bus_bits // 8)  # first input beat into the payload FIFO
        wb = self.beats(t.window_bytes)  # beats of the window
        reserved: set[int] = set()
        recirc_slots: list[int] = []
        start, admit, done, out_end, in_end = [], [], [], [], []
        rec_pop: list[int] = []  # per packet: the cycle its window record leaves the FIFO
        pay_free: list[int | None] = []  # per payload write: the first cycle its slot is free
        bus_free = 0
        last_admit = -1
        out_free = 0
        for i, length in enumerate(lengths):
            nb, ob = self.beats(length), self.beats(out_lengths[i])
            push = min(wb, nb) - 1  # the beat that completes the window record
            w0 = len(pay_free)  # the payload FIFO's write number of beat k0
            pay_free.extend([None] * max(0, nb - k0))
            tin = [0] * nb  # input beat cycles
            tout = [0] * ob  # output beat cycles (on the bus)

            def accept(b: int, earliest: int, i: int = i, push: int = push, w0: int = w0
                       ) -> int:
                c = earliest
                m = i + (b > push)  # window records pushed before this beat
                if m >= buf.windows:
                    c = max(c, rec_pop[m - buf.windows] + 1)
                if b >= k0 and w0 + b - k0 >= buf.payload:
                    free = pay_free[w0 + b - k0 - buf.payload]
                    assert free is not None, "payload FIFO: a beat read before it is written"
                    c = max(c, free)
                return c

            first = max(bus_free, arrivals[i] if arrivals is not None else 0)
            if i >= buf.packets:
                first = max(first, out_end[i - buf.packets] - 1)
            for b in range(push + 1):
                tin[b] = accept(b, first if b == 0 else tin[b - 1] + 1)
            # the record leaves once parser_cycles - 1 have passed, it is in and the PHV
            # register is free (the previous PHV admitted)
            pop = max(tin[0] + t.parser_cycles - 1, tin[push] + 1, last_admit)
            rec_pop.append(pop)
            a = max(pop + 1, last_admit + 1)
            while a in reserved:
                a += 1
            reserved.discard(a)
            for k in range(1, p):
                reserved.add(a + k * self.loop_cycles)
                recirc_slots.append(a + k * self.loop_cycles)
            last_admit = a
            d = a + p * self.pass_cycles + (p - 1) * t.recirc_cycles + t.deparser_cycles
            # the remaining input beats, the output beats and the reads of payload beats
            # the output does not reach (after its last beat), each as soon as it can be
            nxt_in, nxt_out, nxt_drain, drain = push + 1, 0, max(k0, ob), 0
            while nxt_in < nb or nxt_out < ob or nxt_drain < nb:
                j = nxt_out
                if j < ob and not (k0 <= j < nb and j >= nxt_in):
                    c = max(d, out_free) if j == 0 else tout[j - 1] + 1
                    if k0 <= j < nb:
                        c = max(c, tin[j] + 2)  # the payload beat in, then read
                        pay_free[w0 + j - k0] = c  # read at the emission, c - 1
                    tout[j] = c
                    nxt_out += 1
                    if nxt_out == ob:
                        drain = c
                elif nxt_out == ob and nxt_drain < nxt_in:
                    drain = max(drain, tin[nxt_drain] + 1)
                    pay_free[w0 + nxt_drain - k0] = drain + 1
                    drain += 1
                    nxt_drain += 1
                else:
                    tin[nxt_in] = accept(nxt_in, tin[nxt_in - 1] + 1)
                    nxt_in += 1
            bus_free = tin[-1] + 1
            out_free = tout[-1] + 1
            start.append(tin[0])
            in_end.append(bus_free)
            admit.append(a)
            done.append(d)
            out_end.append(out_free)
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
                         tuple(admit[i] - admit[i - 1] for i in range(1, n)), sustained, total,
                         tuple(in_end))
