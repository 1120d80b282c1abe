"""The functional model of the pipe target: a configuration applied to packets.

``PipelineModel(config, state).process(packet)`` runs the parser, every logical stage and
the deparser exactly as docs/pipeline.md specifies them ("Stage semantics": gateways, then
tables, then VLIW ops, stateful units and externs, all reading the PHV as it entered the
stage; writes land together at the stage's end). Table and register contents live in a
``PipelineState`` and persist across packets. The model is the oracle for the RTL: the
cocotb testbenches compare the RTL's verdicts, packets and registers with its results.

Positions are in original-packet coordinates: byte p is the p-th byte of the packet as it
arrived. ``head`` (h) and ``end`` (e) are where data and data_end are now; the window buffer
holds positions [-window_headroom, window_bytes).

A frame longer than ``frame_end`` (which the kernel would run as a multi-buffer frame, the
program seeing only its first frame_end bytes) enters the stages already faulted with punt
reason 3, "frame too long": no stage has a side effect and the deparser punts it unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from hw.pipeline import ops as O
from hw.pipeline.config import Buffer, Extern, PipelineConfig, Stage, load_config
from hw.pipeline.errors import PipelineError
from hw.pipeline.state import PipelineState

PUNT_MAGIC = b"PT"
PUNT_VERSION = 1
PUNT_HEADER = struct.Struct("<2sBBIIHH")  # magic, version, n, reason, ifindex, queue, flags


@dataclass(frozen=True)
class Punt:
    """A packet sent to the host with its punt header (docs/pipeline.md, "Punt header")."""

    reason: int
    fault: bool
    containers: tuple[int, ...]
    frame: bytes  # punt header + packet


@dataclass(frozen=True)
class RegisterWrite:
    stage: int
    unit: int
    addr: int
    old: int
    new: int


@dataclass(frozen=True)
class PipelineResult:
    """One packet through the pipeline."""

    verdict: int  # the verdict metadata field (XDP action, low 32 bits)
    packet_out: bytes  # data .. data_end after stores and adjustments (without punt header)
    redirect: int | None  # the redirect field when the verdict is XDP_REDIRECT
    punt: Punt | None
    containers: tuple[int, ...]
    predicates: int  # bit i = predicate i
    metadata: tuple[tuple[str, int], ...]
    register_writes: tuple[RegisterWrite, ...]
    table_hits: tuple[tuple[int, int, int | None], ...]  # (stage, slot, index or None)
    passes: int

    @property
    def punted(self) -> bool:
        return self.punt is not None

    @property
    def punt_reason(self) -> int:
        return self.punt.reason if self.punt is not None else 0

    @property
    def punt_metadata(self) -> tuple[int, ...]:
        return self.punt.containers if self.punt is not None else ()

    @property
    def action(self) -> str:
        """What the deparser does: punt, or the verdict's name (unknown values abort)."""
        if self.punt is not None:
            return "punt"
        return O.VERDICT_NAMES[self.verdict] if self.verdict < 5 else "aborted"

    def get_meta(self, name: str) -> int:
        return dict(self.metadata)[name]


META_READERS = {
    48: lambda pk: len(pk.pkt), 49: lambda pk: pk.ingress, 50: lambda pk: pk.queue,
    51: lambda pk: pk.verdict, 52: lambda pk: pk.redirect, 53: lambda pk: pk.punt,
    54: lambda pk: pk.head & O.M64, 55: lambda pk: (pk.end - len(pk.pkt)) & O.M64,
    56: lambda pk: pk.end - pk.head, 57: lambda pk: int(pk.fault)}
"""The metadata fields a read of index 48.. returns (others read 0)."""


class PacketState:
    """The PHV and window of one packet in flight, as the parser makes them (public for the
    RTL unit testbenches, whose oracle is this model's own code: rtl_models/tbkit/oracle.py)."""

    def __init__(self, config: PipelineConfig, packet: bytes, ingress: int, queue: int) -> None:
        t = config.target
        self.t = t
        self.pkt = packet
        self.c = [0] * t.num_containers
        self.preds = 1
        self.H = t.window_headroom
        self.window = bytearray(t.window_headroom + t.window_bytes)
        n = min(len(packet), t.window_bytes)
        self.window[self.H:self.H + n] = packet[:n]
        self.head = 0
        self.end = len(packet)
        self.zero_from = len(packet)
        self.verdict = config.default_verdict
        self.redirect = 0
        self.punt = 0
        self.fault = False
        self.ingress = ingress & O.M32
        self.queue = queue & O.M32
        for e in config.extracts:
            self.c[e.container] = int.from_bytes(self.window[self.H + e.offset:
                                                             self.H + e.offset + e.size],
                                                 "little")

    def read(self, index: int) -> int:
        if index < len(self.c):
            return self.c[index]
        meta = META_READERS.get(index)
        return meta(self) if meta is not None else 0

    def pred(self, bits: int, index: int, neg: bool) -> bool:
        return bool(bits >> index & 1) != neg

    def window_index(self, pos: int, size: int) -> int | None:
        """Buffer index of packet offset ``pos`` (from data), or None when out of window."""
        i = self.H + self.head + pos
        return i if 0 <= i and i + size <= len(self.window) else None

    def container_bytes(self, first: int, length: int) -> bytes:
        raw = b"".join(self.c[c].to_bytes(8, "little")
                       for c in range(first, first + -(-length // 8)))
        return raw[:length]

    def output(self) -> bytes:
        """Bytes head .. end: the window's where it holds them, beyond it the packet's
        (zeros from ``zero_from``, where a shrink and regrowth left them)."""
        wb, head, end = self.t.window_bytes, self.head, self.end
        limit = min(self.zero_from, len(self.pkt))
        if self.H + head < 0:  # before the window's start: byte by byte, as indexed
            return bytes(self.window[self.H + p] if p < wb else
                         (self.pkt[p] if p < limit else 0) for p in range(head, end))
        out = bytearray(self.window[self.H + head:self.H + min(end, wb)])
        beyond = max(head, wb)
        if beyond < end:
            out += self.pkt[beyond:max(beyond, min(end, limit))]
            out += bytes(max(0, end - max(beyond, limit)))
        return bytes(out)


class PipelineModel:
    """Executes a configuration on packets; state persists across packets."""

    def __init__(self, config: PipelineConfig | dict, state: PipelineState | None = None
                 ) -> None:
        self.config = load_config(config)
        self.state = state if state is not None else PipelineState(self.config)
        self.target = self.config.target
        self._ops = [sorted(st.ops, key=lambda o: o.slot) for st in self.config.stages]
        self._fast: list | None = None  # hw.pipeline.fast: the stages as generated code
        nc = self.target.num_containers
        self._meta_readers = [  # PacketState.read of each metadata field, resolved once
            (m.name, (lambda pk, i=m.index: pk.c[i]) if m.index < nc else
             META_READERS.get(m.index, lambda pk: 0)) for m in O.METADATA]

    def process(self, packet: bytes, *, ingress_ifindex: int = 1, rx_queue: int = 0,
                cycle: int = 0) -> PipelineResult:
        """Run one packet; ``cycle`` is its admission cycle (what the timestamp extern reads).
        The stages run as generated code (``hw.pipeline.fast``), the same semantics as
        ``process_reference``."""
        if self._fast is None:
            from hw.pipeline.fast import compile_stages

            self._fast = compile_stages(self)
        return self._run(packet, ingress_ifindex, rx_queue, cycle, self._fast)

    def process_reference(self, packet: bytes, *, ingress_ifindex: int = 1, rx_queue: int = 0,
                          cycle: int = 0) -> PipelineResult:
        """``process`` with every stage interpreted by ``_stage`` (the reference)."""
        stages = [lambda pk, w, h, c, s=s, st=st: self._stage(s, st, pk, w, h, c)
                  for s, st in enumerate(self.config.stages)]
        return self._run(packet, ingress_ifindex, rx_queue, cycle, stages)

    def _run(self, packet: bytes, ingress_ifindex: int, rx_queue: int, cycle: int,
             stages: list) -> PipelineResult:
        t = self.target
        if len(packet) < t.min_packet_bytes:
            raise PipelineError(f"packet of {len(packet)} bytes is shorter than "
                                f"min_packet_bytes {t.min_packet_bytes} (the parser drops it)")
        pk = PacketState(self.config, bytes(packet), ingress_ifindex, rx_queue)
        if len(packet) > t.frame_end:  # multi-buffer for the kernel: faulted from parse
            pk.fault = True
            pk.punt = O.PUNT_FRAME_TOO_LONG
        writes: list[RegisterWrite] = []
        hits: list[tuple[int, int, int | None]] = []
        for stage in stages:
            stage(pk, writes, hits, cycle)
        return self._deparse(pk, writes, hits)

    def process_many(self, packets: Sequence[bytes], *, ingress_ifindex: int = 1,
                     rx_queue: int = 0, start_cycle: int = 0) -> list[PipelineResult]:
        """Run packets in order, back to back; admission cycles from the timing model."""
        from hw.pipeline.timing import TimingModel

        sim = TimingModel(self.config).simulate([len(p) for p in packets])
        return [self.process(p, ingress_ifindex=ingress_ifindex, rx_queue=rx_queue,
                             cycle=start_cycle + sim.admit[i]) for i, p in enumerate(packets)]

    # -- one stage -----------------------------------------------------------------------------

    def _stage(self, s: int, st: Stage, pk: PacketState, writes: list[RegisterWrite],
               hits_log: list[tuple[int, int, int | None]], cycle: int) -> None:
        pin = pk.preds
        pg = pin
        for g in st.gateways:
            if g.cmp == "pred":
                r = bool(pin >> g.a & 1)
            else:
                a = O.op_ext(O.OpInput(a=pk.read(g.a), size=g.a_size, offset=g.a_offset))
                b = pk.read(g.b) if g.b is not None else g.imm
                r = O.GATEWAY_BY_NAME[g.cmp].fn(a, b, g.width)  # type: ignore[misc]
            r = r != g.invert
            p_in = pk.pred(pin, g.pred_in, g.pred_in_neg)
            out = (r and p_in) if g.combine == "and" else (r or p_in)
            pg = pg | (1 << g.dst) if out else pg & ~(1 << g.dst)
        cw: dict[int, int] = {}
        hits: dict[int, int | None] = {}
        pt = pg
        for tb in st.tables:
            index = None
            if pk.pred(pg, tb.enable, tb.enable_neg):
                key = b"".join(pk.read(k.container).to_bytes(8, "little")[k.offset:
                                                                          k.offset + k.size]
                               for k in tb.key)
                found = self.state.lookup(s, tb.slot, key)
                if found is not None:
                    index, data = found
                    for j, c in enumerate(tb.action):
                        cw[c] = int.from_bytes(data[8 * j:8 * j + 8], "little")
            hits[tb.slot] = index
            hits_log.append((s, tb.slot, index))
            if tb.hit:
                pt = pt | (1 << tb.hit) if index is not None else pt & ~(1 << tb.hit)
        faults: list[int] = []
        stores: list[tuple[int, bytes]] = []
        adjust: tuple[str, int] | None = None
        for op in self._ops[s]:
            if not pk.pred(pt, op.pred, op.pred_neg):
                continue
            spec = O.VLIW_BY_NAME[op.op]
            a = pk.read(op.a) if spec.reads_a else 0
            b = pk.read(op.b) if op.b is not None else op.imm
            value = None
            if spec.kind == "alu":
                assert spec.fn is not None
                value = spec.fn(O.OpInput(a=a, b=b, width=op.width, size=op.size,
                                          offset=op.offset, signed=op.signed,
                                          sel=bool(pt >> op.sel & 1)))
            elif spec.window:  # x = offset (signed 16 bits) [+ C[a] unsigned], exact
                idx = pk.window_index(op.offset + (a if spec.variable else 0), op.size)
                if idx is None:
                    faults.append(O.PUNT_WINDOW_FAULT)
                    continue
                if spec.kind == "wstore":
                    stores.append((idx, (b & O.mask(8 * op.size)).to_bytes(op.size, "little")))
                    continue
                value = int.from_bytes(pk.window[idx:idx + op.size], "little")
                if op.signed:
                    value = O.sext(value, 8 * op.size)
            elif spec.kind == "adjust":
                value, change = self.adjust_outcome(pk, op.op, O.signed(b, 32))
                if change == "fault":
                    faults.append(O.PUNT_HEADROOM_FAULT)
                    continue
                if change == "ok":
                    adjust = (op.op, O.signed(b, 32))
            if value is not None and op.slot not in O.DISCARD_SLOTS:
                cw[op.slot] = value
        reg_writes: list[RegisterWrite] = []
        for u in st.stateful:
            if not pk.pred(pt, u.pred, u.pred_neg):
                continue
            if u.index_table is not None:
                index = hits.get(u.index_table)
                if index is None:
                    continue
            else:
                index = pk.read(u.index_container) & O.M32
            addr = u.base + index * u.stride
            if addr >= u.words:
                continue
            word = self.state.registers[(s, u.unit)][addr]
            bits = 8 * u.size
            shift = 8 * u.offset
            old = (word >> shift) & O.mask(bits)
            b = pk.read(u.b) if u.b is not None else u.imm
            new = O.STATEFUL_BY_NAME[u.op].fn(old, b, pk.read(u.cmp), bits)
            if u.fetch is not None:
                cw[u.fetch] = old
            if new is not None:
                new_word = (word & ~(O.mask(bits) << shift) & O.M64) | (new << shift)
                reg_writes.append(RegisterWrite(s, u.unit, addr, word, new_word))
        rng: dict[tuple[int, int], int] = {}
        for e in st.externs:
            if not pk.pred(pt, e.pred, e.pred_neg):
                continue
            value = self.extern_value(s, e, pk, cycle, rng)
            if value is None:
                faults.append(O.PUNT_WINDOW_FAULT)
            else:
                cw[e.dst] = value
        # the stage's end: every write lands; side effects only without a fault
        if faults and not pk.fault:
            pk.fault = True
            pk.punt = faults[0]
        for c, v in cw.items():
            if c < len(pk.c):
                pk.c[c] = v
            elif not pk.fault:
                if c == O.META_VERDICT:
                    pk.verdict = v & O.M32
                elif c == O.META_REDIRECT:
                    pk.redirect = v & O.M32
                elif c == O.META_PUNT:
                    pk.punt = v & O.M32
        pk.preds = pt | 1
        if pk.fault:
            return
        for idx, data in stores:
            pk.window[idx:idx + len(data)] = data
        for w in reg_writes:
            self.state.registers[(w.stage, w.unit)][w.addr] = w.new
        writes.extend(reg_writes)
        self.state.rng.update(rng)
        if adjust is not None:
            self._apply_adjust(pk, *adjust)

    def adjust_outcome(self, pk: PacketState, name: str, delta: int) -> tuple[int, str]:
        """(return value, "ok" | "einval" | "fault") of bpf_xdp_adjust_head/tail (``name``
        ``adjh`` / ``adjt``) by ``delta`` bytes on ``pk``, without applying it."""
        t = self.target
        einval = -O.EINVAL & O.M64
        if name == "adjh":
            head = pk.head + delta
            if head < -t.frame_headroom or head > pk.end - t.min_packet_bytes:
                return einval, "einval"
            if head < -t.window_headroom:
                return 0, "fault"
            return 0, "ok"
        end = pk.end + delta
        if end > t.frame_end or end < pk.head + t.min_packet_bytes:
            return einval, "einval"
        return 0, "ok"

    def _apply_adjust(self, pk: PacketState, name: str, delta: int) -> None:
        if name == "adjh":
            pk.head += delta
            return
        end = pk.end + delta
        if delta > 0:  # growth is zeroed (memset in bpf_xdp_adjust_tail)
            lo = max(0, pk.H + pk.end)
            hi = min(len(pk.window), pk.H + end)
            if lo < hi:
                pk.window[lo:hi] = bytes(hi - lo)
        pk.end = end
        pk.zero_from = min(pk.zero_from, end)

    def extern_buffer(self, pk: PacketState, buf: Buffer | None) -> bytes | None:
        """The bytes an extern reads from ``buf`` (containers or window), None on a fault."""
        if buf is None:
            return b""
        if buf.kind == "containers":
            return pk.container_bytes(buf.container, buf.length)
        idx = pk.window_index(buf.offset, buf.length)
        return None if idx is None else bytes(pk.window[idx:idx + buf.length])

    def extern_value(self, s: int, e: Extern, pk: PacketState, cycle: int,
                     rng: dict[tuple[int, int], int]) -> int | None:
        """Extern ``e`` of stage ``s`` on ``pk`` at ``cycle``; None when its buffer faults.
        A random extern records its generator's next state in ``rng``."""
        seed = pk.read(e.seed_container) & O.M32 if e.seed_container is not None else e.seed
        if e.kind == "checksum":
            x, y = self.extern_buffer(pk, e.x), self.extern_buffer(pk, e.y)
            if x is None or y is None:
                return None
            return O.csum_diff(x, y, seed, e.mode)
        if e.kind == "hash":
            x = self.extern_buffer(pk, e.x)
            if x is None:
                return None
            words = [int.from_bytes(x[i:i + 4], "little") for i in range(0, len(x), 4)]
            return O.jhash2(words, seed)
        if e.kind == "random":
            value = O.xorshift32(self.state.rng[(s, e.unit)])
            rng[(s, e.unit)] = value
            return value
        return O.timestamp_ns(cycle, self.target.clock_khz)

    # -- deparser --------------------------------------------------------------------------

    def _deparse(self, pk: PacketState, writes: list[RegisterWrite],
                 hits: list[tuple[int, int, int | None]]) -> PipelineResult:
        packet = pk.output()
        punt = None
        if pk.punt:
            carried = tuple(pk.read(c) for c in self.config.punt_containers)
            header = PUNT_HEADER.pack(PUNT_MAGIC, PUNT_VERSION, len(carried), pk.punt,
                                      pk.ingress, pk.queue & 0xFFFF, int(pk.fault))
            body = b"".join(v.to_bytes(8, "little") for v in carried)
            punt = Punt(pk.punt, pk.fault, carried, header + body + packet)
        meta = tuple((name, read(pk)) for name, read in self._meta_readers)
        return PipelineResult(
            verdict=pk.verdict, packet_out=packet,
            redirect=pk.redirect if pk.verdict == O.XDP_REDIRECT and not pk.punt else None,
            punt=punt, containers=tuple(pk.c), predicates=pk.preds, metadata=meta,
            register_writes=tuple(writes), table_hits=tuple(hits),
            passes=self.config.num_passes)


def parse_punt(frame: bytes) -> tuple[int, bool, int, int, tuple[int, ...], bytes]:
    """(reason, fault, ingress_ifindex, rx_queue, containers, packet) of a punt frame."""
    if len(frame) < PUNT_HEADER.size:
        raise PipelineError(f"punt frame of {len(frame)} bytes is shorter than its header")
    magic, version, n, reason, ifindex, queue, flags = PUNT_HEADER.unpack_from(frame)
    if magic != PUNT_MAGIC or version != PUNT_VERSION:
        raise PipelineError(f"not a punt frame: magic {magic!r} version {version}")
    start = PUNT_HEADER.size
    words = tuple(int.from_bytes(frame[start + 8 * i:start + 8 * i + 8], "little")
                  for i in range(n))
    return reason, bool(flags & 1), ifindex, queue, words, frame[start + 8 * n:]
