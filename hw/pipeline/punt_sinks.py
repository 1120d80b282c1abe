"""Which places of a configuration can punt a packet: a static bound, stage by stage.

``PipelineModel.process`` punts a packet (``PipelineResult.punted``) for one of four
reasons: the frame is longer than ``frame_end`` (faulted at parse), a window op or an
extern's window buffer reaches outside the window (window fault), ``adjh`` reaches below the
window's headroom (headroom fault), or something writes the ``punt_reason`` metadata (a
mapper cut). ``punt_sinks(config)`` lists the places of the last three kinds that may fire
on some packet and some state; when it finds none, a packet is punted iff it is longer than
``frame_end``, whatever its bytes and whatever the tables and registers hold
(``sim.mapping.PipelinePunts.static``: the simulator then needs no model run per packet).

It bounds every container's value by an interval, stage after stage in order (writes land
at the stage's end; a predicated write may or may not happen, so the old range is kept
beside the new one; table data, externs and unknown ALU results are unbounded within their
width), and checks each window access's offsets against the window. It over-approximates:
a place it leaves out cannot punt; a place it lists may never punt in practice.
"""

from __future__ import annotations

from hw.pipeline import ops as O
from hw.pipeline.config import PipelineConfig

_TOP = (-(1 << 64), (1 << 65))
"""Any value a container may hold (signed window loads and ``ext`` give negative ints)."""


def _m(bits: int) -> tuple[int, int]:
    return 0, (1 << bits) - 1


def _within(x: tuple[int, int], m: int) -> bool:
    return 0 <= x[0] and x[1] <= m


def _signed_range(nbytes: int) -> tuple[int, int]:
    half = 1 << (8 * nbytes - 1)
    return -half, half - 1


def _alu_range(op: O.VliwOp, o: object, a: tuple[int, int], b: tuple[int, int],
               ) -> tuple[int, int]:
    """The values an ALU op can produce from operands in ``a`` and ``b`` (ops.py's
    functions; every one masks its result to its width)."""
    w, size, offset = o.width, o.size, o.offset  # type: ignore[attr-defined]
    m = (1 << w) - 1
    full = (0, m)
    name = op.name
    if name == "mov":
        return b if _within(b, m) else full
    if name == "add" and _within(a, m) and _within(b, m) and a[1] + b[1] <= m:
        return a[0] + b[0], a[1] + b[1]
    if name == "sub" and _within(a, m) and _within(b, m) and a[0] - b[1] >= 0:
        return a[0] - b[1], a[1] - b[0]
    if name == "and":
        bounds = [x[1] for x in (a, b) if _within(x, m)]
        return (0, min(bounds)) if bounds else full
    if name in ("or", "xor") and _within(a, m) and _within(b, m):
        return 0, (1 << max(a[1], b[1]).bit_length()) - 1
    if name == "lsh" and _within(a, m) and b[0] == b[1] and b[0] >= 0:
        s = b[0] & (w - 1)
        return (a[0] << s, a[1] << s) if a[1] << s <= m else full
    if name == "rsh" and _within(a, m):
        if b[0] == b[1] and b[0] >= 0:
            s = b[0] & (w - 1)
            return a[0] >> s, a[1] >> s
        return 0, a[1]
    if name == "le":
        k = (1 << 8 * size) - 1
        return a if _within(a, k) else (0, k)
    if name == "ext":
        if o.signed:  # type: ignore[attr-defined]
            return _signed_range(size)
        k = (1 << 8 * size) - 1
        return a if offset == 0 and _within(a, k) else (0, k)
    if name == "sel":
        x = a if _within(a, m) else full
        y = b if _within(b, m) else full
        return min(x[0], y[0]), max(x[1], y[1])
    if name == "div" and _within(a, m):
        return 0, a[1]
    if name in ("ins", "be"):
        return _m(64)
    return full


def punt_sinks(config: PipelineConfig) -> list[str]:
    """The places of ``config`` that may punt a packet no longer than ``frame_end`` (empty:
    only a longer frame is punted), by a forward pass over the stages that bounds every
    container's value (intervals; a predicated write may or may not happen, so the old
    range is kept beside it). A window access is safe when every offset it can use lies
    in the window; any head adjustment makes every window access a possible fault."""
    t = config.target
    nc = t.num_containers
    ops = [(s, op, O.VLIW_BY_NAME[op.op]) for s, st in enumerate(config.stages)
           for op in st.ops]
    if any(spec.kind == "adjust" for _s, _op, spec in ops):
        return ["a head or tail adjustment (window positions move)"]
    env: dict[int, tuple[int, int]] = dict.fromkeys(range(nc), (0, 0))
    for e in config.extracts:
        env[e.container] = _m(8 * e.size)
    length = (0, 1 << 32)
    meta = {O.META_BASE: length, O.META_BY_NAME["data_len"].index: length,
            O.META_BY_NAME["head_delta"].index: (0, 0),
            O.META_BY_NAME["tail_delta"].index: (0, 0)}

    def read(c: int | None, imm: int = 0) -> tuple[int, int]:
        if c is None:
            return imm, imm
        return env.get(c, _TOP) if c < nc else meta.get(c, _TOP)

    def in_window(lo: int, hi: int, size: int) -> bool:
        return lo >= -t.window_headroom and hi + size <= t.window_bytes

    sinks: list[str] = []
    for s, st in enumerate(config.stages):
        clears_bit0 = any(g.dst == 0 for g in st.gateways)
        writes: dict[int, list[tuple[tuple[int, int], bool]]] = {}

        def write(c: int, value: tuple[int, int], always: bool, where: str,
                  s: int = s, writes: dict = writes) -> None:
            if c == O.META_PUNT:
                sinks.append(f"stage {s}: {where} writes punt_reason")
            if c < nc:
                writes.setdefault(c, []).append((value, always))

        for tb in st.tables:
            for c in tb.action:
                write(c, _m(64), False, f"table {tb.slot}")
        for op in st.ops:
            spec = O.VLIW_BY_NAME[op.op]
            always = op.pred == 0 and not op.pred_neg and not clears_bit0
            a = read(op.a) if spec.reads_a else (0, 0)
            b = read(op.b, op.imm)
            if spec.window:
                lo, hi = (a[0] + op.offset, a[1] + op.offset) if spec.variable else \
                    (op.offset, op.offset)
                if not in_window(lo, hi, op.size):
                    sinks.append(f"stage {s}: {op.op} at offsets {lo}..{hi} "
                                 f"(size {op.size}) may leave the window")
                if spec.kind == "wstore":
                    continue
                value = _signed_range(op.size) if op.signed else _m(8 * op.size)
            elif spec.kind == "alu":
                value = _alu_range(spec, op, a, b)
            else:
                continue
            if op.slot not in O.DISCARD_SLOTS:
                write(op.slot, value, always, f"op {op.op}")
        for u in st.stateful:
            if u.fetch is not None:
                write(u.fetch, _m(8 * u.size), False, f"stateful unit {u.unit}")
        for e in st.externs:
            for buf in (e.x, e.y):
                if buf is not None and buf.kind == "window" and \
                        not in_window(buf.offset, buf.offset, buf.length):
                    sinks.append(f"stage {s}: {e.kind} extern reads outside the window")
            write(e.dst, _TOP, False, f"{e.kind} extern")
        for c, ws in writes.items():  # the stage's end: every write lands together
            values = [v for v, _always in ws]
            if not any(always for _v, always in ws):
                values.append(env[c])
            env[c] = (min(v[0] for v in values), max(v[1] for v in values))
    return sinks


def decisive_maps(config: PipelineConfig) -> tuple[frozenset[str], bool]:
    """The state a packet's outcome on ``config`` can read: the bound maps whose contents
    may reach a container (through a table's hit bit or action data, or a stateful unit's
    fetch), and whether some stateful unit fetches (then the registers the pipeline writes
    itself reach containers too). Everything else a packet does to the state (a stateful
    add without fetch, a counter) is written and never read back, so it cannot change a
    later packet's punt. A random extern's generator is state as well: it is not listed
    here (``PipelinePunts`` remembers nothing then)."""
    fetches = any(u.fetch is not None for st in config.stages for u in st.stateful)
    read = {m.name for m in config.maps if m.tables or (fetches and m.registers)}
    return frozenset(read), fetches
