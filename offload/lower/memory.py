"""Memory in the translation: stack bytes, the packet window, map values and lookups.

- **Stack**: no memory at all. Stores record what each byte holds (``State.stack``); a
  load of bytes written from one value gives that value back (store-to-load forwarding),
  other loads assemble the bytes with ``ins`` ops. Keys of map lookups are read the same
  way, as table key slices of the containers that hold the bytes.
- **Packet**: a load at a constant offset that no earlier store (on any path) overlaps and
  no adjust preceded is a parser extract; otherwise a window load (``wld`` / ``wldv``)
  placed after the stores it may read (RAW) and the adjust ops (their new head).
  Stores are ``wst`` / ``wstv`` after the loads they may overwrite (WAR) and the stores
  before them (WAW). Accesses that may leave the window are marked ``may_fault``.
- **Map values**: words the program never writes are read from the table's action data
  (one container per 8-byte word); written words live in stateful registers, each
  access a stateful op (``read``, ``write``, ``add``, ...): indexed by the key for arrays,
  by the hit address of a table copy in the same unit for hash and LPM maps. A load,
  ALU op and store of the same field in one block (``(*v)++``, ``v->x += n``) become one
  stateful read-modify-write.
"""

from __future__ import annotations

from typing import Any

from ebpf.code.isa import AtomicOp
from offload.lower.ir import (
    INGRESS,
    RX_QUEUE,
    TRUE,
    AluOp,
    Cond,
    Const,
    Ctx,
    KeyPart,
    Lookup,
    MapPtr,
    MapVal,
    Pkt,
    PktEnd,
    Stack,
    StatefulOp,
    TableOp,
    Top,
    Val,
    Value,
    node_guard,
)
from offload.lower.state import State, continues, is_merged_value, run_sym, sym_bytes

_EXACT = ("hash", "percpu_hash", "lru_hash", "lru_percpu_hash")
_ARRAY = ("array", "percpu_array")
_ATOMIC = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and", AtomicOp.XOR: "xor"}


class Unsupported(Exception):
    """A construct the lowering cannot express; ``slot`` becomes a cut."""

    def __init__(self, slot: int, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.slot, self.what, self.fix = slot, what, fix


def _normal(base: Any, lo: int, hi: int, rel: dict) -> tuple[Any, int, int]:
    """(root base, lo, hi): a base defined as parent + [a, b] moves the range to the parent."""
    while base is not None and base.id in rel:
        base, a, b = rel[base.id][0], lo + rel[base.id][1], hi + rel[base.id][2]
        lo, hi = a, b
    return base, lo, hi


def overlap(a: tuple, b: tuple, rel: dict) -> bool:
    """Window accesses (op, base, lo, hi, abs_lo, abs_hi): may their bytes overlap?

    Offsets relative to one root base (both constant, or offset containers derived from one
    container plus ranges the analysis proved on the path) compare exactly; others compare
    the analysis' absolute ranges when known.
    """
    if a[1] is b[1]:
        return a[2] < b[3] and b[2] < a[3]
    ra, la, ha = _normal(a[1], a[2], a[3], rel)
    rb, lb, hb = _normal(b[1], b[2], b[3], rel)
    if ra is rb:
        return la < hb and lb < ha
    if a[4] is None or b[4] is None:
        return True
    return a[4] < b[5] and b[4] < a[5]


class MemoryMixin:
    """Loads, stores, atomics and map lookups of ``offload.lower.translate.Translator``."""

    # the Translator provides these
    an: Any
    obj: Any
    params: Any
    ops: list
    lookups: list
    extracts: dict
    written: dict
    has_adjust_head: bool
    base_rel: dict

    # -- dispatch --------------------------------------------------------------------------

    def load(self, n: int, st: State, slot: int, ptr: Any, off: int, size: int,
             signed: bool) -> Any:
        if isinstance(ptr, Ctx):
            sym = self._ctx_load(slot, off)
        elif isinstance(ptr, Stack):
            sym = self.stack_load(n, st, slot, ptr.depth, ptr.off + off, size)
        elif isinstance(ptr, Pkt):
            sym = self.pkt_load(n, st, slot, ptr, off, size)
        elif isinstance(ptr, MapVal):
            sym = self.map_load(n, st, slot, ptr, off, size)
        elif is_merged_value(ptr):
            sym = self.merged_load(n, st, slot, ptr, off, size)  # type: ignore[attr-defined]
        else:
            raise Unsupported(slot, "a load through a pointer the lowering does not follow")
        if signed:
            a = self.src_of(sym, n, slot, 8 * size)
            sym = Val(self.alu(n, slot, TRUE, "sext", a=a, size=size).dst)
        return sym

    def store(self, n: int, st: State, slot: int, ptr: Any, off: int, size: int,
              val: Any, raw: Any = None) -> None:
        if isinstance(ptr, Stack):
            self.stack_store(st, slot, ptr.depth, ptr.off + off, size, val)
        elif isinstance(ptr, Pkt):
            self.pkt_store(n, st, slot, ptr, off, size, val)
        elif isinstance(ptr, MapVal):
            self.map_store(n, st, slot, ptr, off, size, val, raw)
        elif is_merged_value(ptr):
            raise Unsupported(slot, "a store through value pointers of different map lookups "
                                    "merged (the stateful write would need the edge that "
                                    "chose the map)")
        else:
            raise Unsupported(slot, "a store through a pointer the lowering does not follow")

    def _ctx_load(self, slot: int, off: int) -> Any:
        if off == 0:
            return Pkt(None, 0)
        if off == 4:
            return PktEnd()
        if off == 12:
            return Val(INGRESS)
        if off == 16:
            return Val(RX_QUEUE)
        if off == 20:
            return Const(0)
        raise Unsupported(slot, "a read of ctx->data_meta (XDP metadata)")

    # -- stack ----------------------------------------------------------------------------

    def stack_store(self, st: State, slot: int, depth: int, off: int, size: int,
                    val: Any) -> None:
        if isinstance(val, Top):
            data: list = [None] * size
        elif isinstance(val, (Const, Val)):
            data = sym_bytes(val, size)
        else:
            if size != 8 and not (hasattr(val, "incoming") and size <= val.size):
                raise Unsupported(slot, "a partial store of a pointer to the stack")
            data = [("s", val, i) for i in range(size)]
        for i in range(size):
            if data[i] is None:
                st.stack.pop((depth, off + i), None)
            else:
                st.stack[(depth, off + i)] = data[i]

    def stack_load(self, n: int, st: State, slot: int, depth: int, off: int,
                   size: int) -> Any:
        data = [st.stack.get((depth, off + i)) for i in range(size)]
        if any(b is None for b in data):
            raise Unsupported(slot, "a stack read of bytes the lowering did not see written "
                                    "on every path")
        return self.bytes_sym(n, slot, data)

    def run_value(self, run: list, slot: int) -> Any:
        """``run_sym``, and bytes i.. of a lazy phi as a slice of its container."""
        from offload.lower.state import Phi
        sym = run_sym(run)
        if sym is not None or not run or run[0][0] != "s":
            return sym
        phi, first = run[0][1], run[0][2]
        if isinstance(phi, Phi) and first + len(run) <= 8 and all(
                b[0] == "s" and b[1] is phi and b[2] == first + k for k, b in enumerate(run)):
            return Val(self.phi_value(phi, slot), first, len(run))
        return None

    def bytes_sym(self, n: int, slot: int, data: list) -> Any:
        """The value of little-endian ByteSyms (ops to assemble them when needed)."""
        sym = run_sym(data)
        if sym is not None:
            return sym
        runs = []
        start = 0
        for i in range(1, len(data) + 1):
            if i == len(data) or not continues(data[i - 1], data[i]):
                runs.append((start, data[start:i]))
                start = i
        const = 0
        parts = []
        for pos, run in runs:
            if run[0][0] == "c":
                const |= sum(b[1] << (8 * (pos + j)) for j, b in enumerate(run))
            else:
                parts.append((pos, run))
        acc = self.src_of(Const(const), n, slot)
        for pos, run in parts:
            rsym = self.run_value(run, slot)
            if rsym is None:
                raise Unsupported(slot, "a stack read of part of a pointer")
            if not isinstance(rsym, Val):
                rsym = Val(self.src_of(rsym, n, slot), 0, len(run))
            q = 0
            while q < len(run):
                step = next(s for s in (8, 4, 2, 1) if s <= len(run) - q)
                piece = Val(rsym.src, rsym.off + q, step)
                b = self.src_of(piece, n, slot, 8 * step)
                acc = self.alu(n, slot, TRUE, "ins", a=acc, b=b, offset=pos + q,
                               size=step, bits=8 * len(data)).dst
                q += step
        return Val(acc, 0, len(data))

    # -- ranges over every path ------------------------------------------------------------

    def any_range(self, v: Any, need: set[int], depth: int = 0) -> tuple[int, int] | None:
        """[lo, hi] of container ``v`` on every packet, whatever path ran (or None).

        Speculated ops run on every packet, so their result is bounded by their operands'
        bounds; a value whose definitions may not run holds 0 there when its container is
        reserved from the parser on (``zero_init``: added to ``need``).
        """
        from offload.lower.ir import Meta
        if isinstance(v, Meta):
            return (0, 0xFFFF) if v.index in (48, 56) else (0, (1 << 32) - 1) \
                if v.index in (49, 50) else None
        if depth > 24:
            return None
        if v.kind == "extract":
            return 0, (1 << v.bits) - 1
        if not v.defs:
            return None
        spans = []
        # defined on every packet when its first definition is unconditional
        partial = not (isinstance(v.defs[0], AluOp) and v.defs[0].guard == TRUE)
        for d in v.defs:
            if not isinstance(d, AluOp):
                spans.append((0, (1 << min(v.bits, 64)) - 1))
                continue
            r = self._op_range(d, need, depth)
            if r is None:
                return None
            spans.append(r)
        if partial:
            need.add(v.id)
            spans.append((0, 0))
        return min(a for a, _ in spans), max(b for _, b in spans)

    def _op_range(self, d: AluOp, need: set[int], depth: int) -> tuple[int, int] | None:
        lim = (1 << 63) - 1
        wmax = (1 << d.width) - 1

        def rng(x: Any) -> tuple[int, int] | None:
            return self.any_range(x, need, depth + 1)

        a = rng(d.a) if d.a is not None else None
        b = rng(d.b) if d.b is not None else (d.imm, d.imm)
        op = d.op
        out: tuple[int, int] | None
        if op == "mov":
            out = b
        elif op in ("wld", "wldv", "ext"):
            out = (0, (1 << (8 * d.size)) - 1)
        elif op == "and" and d.b is None:
            out = (0, d.imm if a is None else min(a[1], d.imm))
        elif a is None or b is None:
            out = None
        elif op == "add":
            out = (a[0] + b[0], a[1] + b[1])
        elif op == "sub" and d.b is None:
            out = (a[0] - d.imm, a[1] - d.imm) if a[0] >= d.imm else None
        elif op == "or":
            out = (max(a[0], b[0]), (1 << max(a[1], b[1]).bit_length()) - 1)
        elif op == "lsh" and d.b is None:
            out = (a[0] << d.imm, a[1] << d.imm) if d.imm < d.width else None
        elif op == "rsh" and d.b is None:
            out = (a[0] >> d.imm, a[1] >> d.imm) if d.imm < d.width else None
        else:
            out = None
        if out is None:
            return None
        if out[1] > min(lim, wmax) or out[0] < 0:
            return (0, wmax) if d.width == 32 else None
        return out

    # -- packet ---------------------------------------------------------------------------

    def access_range(self, slot: int) -> tuple[int, int] | None:
        """The analysis' offset range [lo, hi) of the packet access at ``slot``."""
        for a in self.an.accesses(slot):
            if a.helper is None and a.offset is not None and a.size:
                if a.offset.smin < 0 or a.offset.umax > 1 << 16:
                    return None
                return a.offset.umin, a.offset.umax + a.size
        return None

    def extract(self, x: int, size: int, slot: int | None = None) -> Value:
        key = (x, size)
        if key not in self.extracts:
            self.extracts[key] = self.value(f"pkt[{x}:{x + size}]", "extract", 8 * size,
                                            extract=(x, size), slot=slot)
        return self.extracts[key]

    def _window_op(self, n: int, st: State, slot: int, ptr: Pkt, off: int, size: int,
                   store: bool, b: Any = None, imm: int = 0) -> Any:
        p = self.params
        w, h = p.window_bytes, p.window_headroom
        x = ptr.k + off
        if not -32768 <= x <= 32767:
            raise Unsupported(slot, f"a packet offset {x} beyond the window op's 16 bits")
        if ptr.base is None:
            lo, hi = x, x + size
            rng: tuple[int, int] | None = (lo, hi) if not st.adjusted else None
            may_fault = not (st.head_min + x >= -h and st.head_max + x + size <= w)
            safe = not self.has_adjust_head and 0 <= x and x + size <= w
        else:
            if not p.variable_offset:
                raise Unsupported(slot, f"a packet access at a variable offset; {p.target} "
                                        f"reads the window at constant offsets only")
            rng = self.access_range(slot) if not st.adjusted else None
            lo, hi = x, x + size
            may_fault = rng is None or not (rng[0] + st.head_min >= -h
                                            and rng[1] + st.head_max <= w)
            safe = False
            need: set[int] = set()
            anyr = self.any_range(ptr.base, need)
            if anyr is not None and not self.has_adjust_head and \
                    anyr[0] + x >= -h and anyr[1] + x + size <= w:
                safe = True  # in the window whatever path computed the offset
                may_fault = False
                for vid in need:
                    self.values[vid].zero_init = True
        guard = TRUE if safe and not store else node_guard(n)
        if store:
            op = self.alu(n, slot, guard, "wstv" if ptr.base is not None else "wst",
                          a=ptr.base, b=b, imm=imm, size=size, offset=x)
            op.side_effect = True
        else:
            op = self.alu(n, slot, guard, "wldv" if ptr.base is not None else "wld",
                          a=ptr.base, size=size, offset=x, bits=8 * size)
        op.may_fault = may_fault
        me = (op, ptr.base, lo, hi) + (rng if rng is not None else (None, None))
        for entry in st.pkt:
            e = entry[0]
            if not overlap(me, entry, self.base_rel):
                continue
            if e.op in ("wst", "wstv"):
                self.dep(e, op, "action")
            elif store:
                self.dep(e, op, "reverse_match")
        self.he_read(op, n, st)
        st.pkt = st.pkt + (me,)
        return op

    def pkt_load(self, n: int, st: State, slot: int, ptr: Pkt, off: int, size: int) -> Any:
        x = ptr.k + off
        bkey = -1 if ptr.base is None else ptr.base.id
        known = [st.wbytes.get((bkey, x + i)) for i in range(size)]
        if all(b is not None for b in known):  # every byte stored or loaded before
            return self.bytes_sym(n, slot, [b[0] for b in known])
        if ptr.base is None and not st.adjusted and 0 <= x and \
                x + size <= self.params.window_bytes and \
                not any(e[0].op in ("wst", "wstv") and overlap((None, None, x, x + size, x,
                                                                 x + size), e, self.base_rel)
                        for e in st.pkt):
            sym = Val(self.extract(x, size, slot))
        else:
            sym = Val(self._window_op(n, st, slot, ptr, off, size, False).dst)
        self._remember(st, bkey, x, size, sym, slot)
        return sym

    def _remember(self, st: State, bkey: int, x: int, size: int, sym: Any, slot: int) -> None:
        """Record the window bytes [x, x+size) at base ``bkey`` as ``sym``'s bytes."""
        rng = self.access_range(slot) if bkey != -1 else (x, x + size)
        for i, b in enumerate(sym_bytes(sym, size)):
            where = (rng[0] + i, rng[1] - size + i + 1) if rng is not None else (None, None)
            st.wbytes[(bkey, x + i)] = (b,) + where

    def pkt_store(self, n: int, st: State, slot: int, ptr: Pkt, off: int, size: int,
                  val: Any) -> None:
        val = self.scalar(val, n, slot)
        if not isinstance(val, (Const, Val)):
            raise Unsupported(slot, "a store of a pointer into the packet")
        b, imm = self.operand_b(val, n, slot, 8 * size)
        op = self._window_op(n, st, slot, ptr, off, size, True, b, imm)
        x = ptr.k + off
        bkey = -1 if ptr.base is None else ptr.base.id
        me = st.pkt[-1]
        bases = {v.id: v for v in (e[1] for e in st.pkt) if v is not None}
        for key, entry in list(st.wbytes.items()):
            if key[0] == bkey:
                continue
            other = None if key[0] == -1 else bases.get(key[0])
            if (key[0] == -1 or other is not None) and not overlap(
                    me, (None, other, key[1], key[1] + 1, entry[1], entry[2]), self.base_rel):
                continue
            del st.wbytes[key]
        self._remember(st, bkey, x, size, val, slot)
        _ = op

    # -- map lookups ----------------------------------------------------------------------

    def lookup(self, n: int, st: State, slot: int) -> Any:
        from offload.lower.state import Phi
        key = st.regs[2]
        stack_keys = isinstance(key, Phi) and all(isinstance(s, Stack) for _, s in key.leaves())
        if isinstance(st.regs[1], Phi) or stack_keys:  # clang merged the calls
            return self.merged_map_lookup(n, st, slot)  # type: ignore[attr-defined]
        return self.lookup_in(n, st, slot, st.regs[1], st.regs[2])

    def lookup_in(self, n: int, st: State, slot: int, mp: Any, key_ptr: Any) -> Any:
        """``bpf_map_lookup_elem(mp, key_ptr)``: a MapVal, or Const(0) (never found)."""
        if not isinstance(mp, MapPtr) or not 0 <= mp.map < len(self.obj.maps):
            raise Unsupported(slot, "a map lookup on a map the lowering cannot name")
        m = self.obj.maps[mp.map]
        t = m.type_name
        if t not in _EXACT + _ARRAY + ("lpm_trie",):
            raise Unsupported(slot, f"a lookup in a {t} map ('{m.name}') has no table "
                                    f"equivalent")
        if self.params.map_types and t not in self.params.map_types:
            raise Unsupported(slot, f"map '{m.name}' is a {t}; {self.params.target} has "
                                    f"{', '.join(self.params.map_types)}")
        ptr = self.pointer(key_ptr, slot)
        data = self._key_bytes(n, st, slot, ptr, m.key_size)
        if t == "lpm_trie":
            prefix = run_sym(data[:4])
            full = 8 * (m.key_size - 4)
            if not (isinstance(prefix, Const) and prefix.value == full):
                raise Unsupported(slot, f"an LPM lookup in '{m.name}' whose prefix length is "
                                        f"not the full {full} bits")
            data = data[4:]
        lk = Lookup(len(self.lookups), mp.map, n, slot, None)
        self.lookups.append(lk)
        if all(b[0] == "c" for b in data):
            lk.const_key = sum(b[1] << (8 * i) for i, b in enumerate(data))
            lk.key_bytes = bytes(b[1] for b in data)
        lk.key = self._key_parts(n, slot, data)
        if t in _ARRAY:
            lk.info["index"] = self.bytes_sym(n, slot, data)
            if lk.const_key is not None and lk.const_key >= m.max_entries:
                return Const(0)
        return MapVal(lk, 0)

    def global_lookup(self, n: int, slot: int, index: int) -> Lookup:
        for lk in self.lookups:
            if lk.map == index and lk.node < 0:
                return lk
        lk = Lookup(len(self.lookups), index, -1, slot, None, 0, key_bytes=bytes(4))
        lk.key = [KeyPart(self.src_of(Const(0), n, slot), 0, 4)]
        lk.info["index"] = Const(0)
        self.lookups.append(lk)
        return lk

    def _key_bytes(self, n: int, st: State, slot: int, ptr: Any, size: int) -> list:
        if isinstance(ptr, Stack):
            data = [st.stack.get((ptr.depth, ptr.off + i)) for i in range(size)]
            if any(b is None for b in data):
                raise Unsupported(slot, "a map key with bytes the lowering did not see "
                                        "written")
            return data
        if isinstance(ptr, Pkt):
            out: list = []
            pos = 0
            while pos < size:
                step = next(s for s in (8, 4, 2, 1) if s <= size - pos)
                out += sym_bytes(self.pkt_load(n, st, slot, ptr, pos, step), step)
                pos += step
            return out
        raise Unsupported(slot, "a map key that is neither on the stack nor in the packet")

    def _key_parts(self, n: int, slot: int, data: list) -> list[KeyPart]:
        parts = []
        start = 0
        for i in range(1, len(data) + 1):
            if i < len(data) and continues(data[i - 1], data[i]) and i - start < 8:
                continue
            run = data[start:i]
            sym = self.run_value(run, slot)
            if isinstance(sym, Val):
                parts.append(KeyPart(sym.src, sym.off, len(run)))
            elif sym is not None:
                parts.append(KeyPart(self.src_of(sym, n, slot), 0, len(run)))
            else:
                raise Unsupported(slot, "a map key built from bytes the lowering cannot "
                                        "slice")
            start = i
        if len(parts) > self.params.key_slices:
            raise Unsupported(slot, f"a map key of {len(parts)} pieces; a table key takes "
                                    f"{self.params.key_slices} container slices")
        return parts

    def ensure_table(self, lk: Lookup) -> TableOp:
        if lk.table is None:
            if lk.key is None:  # a merged lookup: the key is its index
                idx = self.src_of(lk.info["index"], max(lk.node, 0), lk.slot, 32)
                lk.key = [KeyPart(idx, 0, 4)]
            m = self.obj.maps[lk.map]
            kind = "direct" if m.type_name in _ARRAY or m.is_global_data else \
                "lpm" if m.type_name == "lpm_trie" else "exact"
            guard = TRUE if lk.node < 0 else node_guard(lk.node)
            t = TableOp(len(self.ops), max(lk.node, 0), lk.slot, guard, lk, kind,
                        list(lk.key or []), [])
            self.emit(t)
            lk.table = t
        return lk.table

    def table_action(self, lk: Lookup, slot: int) -> list[Value]:
        t = self.ensure_table(lk)
        if not t.action:
            m = self.obj.maps[lk.map]
            words = -(-m.value_size // 8)
            if words > self.params.action_containers:
                raise Unsupported(slot, f"map '{m.name}' has {m.value_size}-byte values; a "
                                        f"table hit writes at most "
                                        f"{8 * self.params.action_containers} bytes")
            for w in range(words):
                nbytes = min(8, m.value_size - 8 * w)
                v = self.value(f"{m.name}.value[{w}]", "action", 8 * nbytes, slot=lk.slot)
                v.defs.append(t)
                t.action.append(v)
        return t.action

    def never_null(self, lk: Lookup) -> bool:
        """A global-data value, or a constant index inside an array."""
        m = self.obj.maps[lk.map]
        return lk.node < 0 or (lk.const_key is not None and m.type_name in _ARRAY)

    def null_check(self, n: int, slot: int, mv: MapVal, is_eq: bool) -> Any:
        """The condition of ``mv == NULL`` (``is_eq``) or ``!= NULL``: a Cond or a bool."""
        lk = mv.lookup
        m = self.obj.maps[lk.map]
        if self.never_null(lk):
            return not is_eq
        if m.type_name in _ARRAY:
            idx = lk.info["index"]
            if not isinstance(idx, Val) or idx.size not in (1, 2, 4) or idx.off + idx.size > 8:
                idx = Val(self.src_of(idx, n, slot, 32), 0, 4)
            return Cond("ult", (idx.src, idx.off, idx.size), None, m.max_entries, 64,
                        neg=is_eq)
        self.ensure_table(lk)
        return Cond("hit", lk, neg=is_eq)

    # -- map values -----------------------------------------------------------------------

    def _word(self, slot: int, mv: MapVal, off: int, size: int) -> tuple[int, int]:
        o = mv.off + off
        value_size = self.obj.maps[mv.lookup.map].value_size
        if o < 0 or o + size > value_size:  # the kernel verifier refuses it; we cut
            raise Unsupported(slot, f"a map value access of {size} bytes at offset {o} "
                                    f"past the value's {value_size} bytes")
        if o % 8 + size > 8 or (o % 8) % size:
            raise Unsupported(slot, f"a map value access of {size} bytes at offset {o} "
                                    f"(not inside one aligned 8-byte word)")
        return o // 8, o % 8

    def _is_written(self, lk: Lookup, word: int) -> bool:
        if lk.map not in self.written:
            return False
        words = self.written[lk.map]
        return words is None or word in words

    def map_load(self, n: int, st: State, slot: int, mv: MapVal, off: int, size: int) -> Any:
        word, field = self._word(slot, mv, off, size)
        if self._is_written(mv.lookup, word):
            op = self.stateful(n, st, slot, mv.lookup, "read", word, size, field, None, True)
            return Val(op.fetch)
        action = self.table_action(mv.lookup, slot)
        return Val(action[word], field, size)

    def map_store(self, n: int, st: State, slot: int, mv: MapVal, off: int, size: int,
                  val: Any, raw: Any = None) -> None:
        """A store through a value pointer: a stateful ``write``, or, when it stores
        ``old OP b`` for an ``old`` read from the same field on its paths (``(*v)++``, also
        when clang merged the stores of several sites into one tail), those reads become
        read-modify-writes and the store goes."""
        word, field = self._word(slot, mv, off, size)
        if self._rmw(n, slot, mv, raw, word, field, size, val):
            return
        val = self.scalar(val, n, slot)
        if not isinstance(val, (Const, Val)):
            raise Unsupported(slot, "a store of a pointer into a map value")
        self.stateful(n, st, slot, mv.lookup, "write", word, size, field, val, False)

    def _rmw(self, n: int, slot: int, mv: MapVal, raw: Any, word: int, field: int,
             size: int, val: Any) -> bool:
        from offload.lower.state import Phi
        if isinstance(val, Phi):
            leaves = val.leaves()
        else:
            leaves = [((), val)]
        plan = []

        def pointer_on(path: tuple) -> Any:
            cur = raw if raw is not None else mv
            for pred, node in path:
                if isinstance(cur, Phi) and cur.node == node:
                    cur = dict(cur.incoming).get(pred)
            if isinstance(cur, Phi):
                cur = self.pointer(cur, slot)
            return cur

        for path, leaf in leaves:
            if not (isinstance(leaf, Val) and leaf.off == 0 and isinstance(leaf.src, Value)
                    and len(leaf.src.defs) == 1):
                return False
            alu = leaf.src.defs[0]
            if not (isinstance(alu, AluOp) and alu.op in ("add", "sub", "or", "and", "xor")
                    and (alu.width == 64 or 8 * size <= 32)):
                return False
            for mine, other in ((alu.a, (alu.b, alu.imm)), (alu.b, (alu.a, 0))):
                if not (isinstance(mine, Value) and mine.kind == "fetch" and mine.defs):
                    continue
                rd = mine.defs[0]
                if mine is alu.b and alu.op == "sub":
                    continue
                if alu.op == "sub" and other[0] is not None:
                    continue
                lk = pointer_on(path)
                lk = lk.lookup if isinstance(lk, MapVal) else None
                if (isinstance(rd, StatefulOp) and rd.op == "read" and rd.lookup is lk
                        and rd.word == word and rd.size == size and rd.offset == field
                        and self.always_reaches(rd.node, n)
                        and not self._between(rd, n)):
                    plan.append((rd, alu.op, other))
                    break
            else:
                return False
        for rd, op, (b, imm) in plan:
            rd.op = "add" if op == "sub" else op
            rd.b, rd.imm = b, ((-imm if op == "sub" else imm) & ((1 << 64) - 1))
            rd.side_effect = True
            if isinstance(b, Value):
                b.uses.append(rd)
        return True

    def _between(self, rd: StatefulOp, n: int) -> bool:
        """Another access to ``rd``'s map word on a path from ``rd`` to node ``n``?"""
        for op in self.ops:
            if (isinstance(op, StatefulOp) and op is not rd and op.lookup.map == rd.lookup.map
                    and op.word == rd.word and self.dag_reach(rd.node, op.node)
                    and self.dag_reach(op.node, n) and (op.node != rd.node or op.id > rd.id)):
                return True
        return False

    def atomic(self, n: int, st: State, slot: int, insn: Any) -> State:
        ptr = self.pointer(st.regs[insn.dst], slot)
        if not isinstance(ptr, MapVal):
            raise Unsupported(slot, "an atomic operation outside a map value")
        imm = insn.imm
        size = insn.spec.width
        if imm == AtomicOp.XCHG:
            name, fetch = "xchg", True
        elif imm == AtomicOp.CMPXCHG:
            name, fetch = "cmpxchg", True
        else:
            name, fetch = _ATOMIC[AtomicOp(imm & ~AtomicOp.FETCH)], bool(imm & AtomicOp.FETCH)
        if self.params.atomics and name not in self.params.atomics:
            raise Unsupported(slot, f"atomic {name}; {self.params.target} has "
                                    f"{', '.join(self.params.atomics)}")
        word, field = self._word(slot, ptr, insn.off, size)
        b = self.scalar(self.reg(st, insn.src, n, slot), n, slot)
        op = self.stateful(n, st, slot, ptr.lookup, name, word, size, field, b, fetch)
        if name == "cmpxchg":
            r0 = self.scalar(self.reg(st, 0, n, slot), n, slot)
            op.cmp = self.src_of(r0, n, slot, 8 * size)
            op.cmp.uses.append(op) if isinstance(op.cmp, Value) else None
            return st.with_reg(0, Val(op.fetch))
        if fetch:
            return st.with_reg(insn.src, Val(op.fetch))
        return st

    def stateful(self, n: int, st: State, slot: int, lk: Lookup, name: str, word: int,
                 size: int, field: int, b_sym: Any, fetch: bool) -> StatefulOp:
        m = self.obj.maps[lk.map]
        b, imm = (None, 0) if b_sym is None else self.operand_b(b_sym, n, slot, 8 * size)
        fv = self.value(f"{m.name}.value[{word}]@{slot}", "fetch", 8 * size, slot=slot) \
            if fetch else None
        op = StatefulOp(len(self.ops), n, slot, node_guard(n), lk, name, word, size, field,
                        b, imm, fv)
        if m.type_name in _ARRAY or m.is_global_data:
            idx = lk.info["index"]
            op.index = self.src_of(idx, n, slot, 32)
        else:
            t = TableOp(len(self.ops) + 1, n, slot, node_guard(n), lk,
                        "lpm" if m.type_name == "lpm_trie" else "exact", list(lk.key or []), [])
            t.stateful.append(op)
            op.table = t
        self.emit(op)
        if op.table is not None:
            self.emit(op.table)
        st.rmw[(lk.id, word)] = op
        return op
