"""What a target cannot do of a program, per construct: ``check_target``, the one
feasibility check of every target kind.

The mapper's verdict (``offload.feasibility.check``: full, partial or host-only), the
``cost`` block of the run-to-completion models (``hw.rtc``: ``CostEstimate.feasible`` and
``reasons``) and the simulator's refusal of a run-to-completion NIC all read these reasons.
They come from the shared abstract interpretation (``ebpf.analysis.analyze``): only
reachable instructions count, operand ranges decide multiply and divide widths, the
returned verdicts are the values r0 may hold.

Every construct the target cannot do becomes a ``Reason``: the slot (``insn``, the first of
``insns`` when one source line holds several), the C file and line from the line info,
``what`` the construct is and ``fix``, what would make it fit. Constructs checked against
the target profile (``hw/targets/*.toml``; a target without an ``[ebpf]`` section, the host
and the DPU, runs whatever the kernel verifier accepts):

========================== ===================================================================
kind                       construct
========================== ===================================================================
``helper``, ``kfunc``      a helper not in ``ebpf.helpers``; any kfunc call
``map_type``               a map reference (``lddw``) to a type not in ``ebpf.map_types``
``map_memory``             pipelines: the maps' entries x (key + value) beyond the stages'
                           SRAM (exact, direct tables, action data) or TCAM (LPM keys), or a
                           key wider than ``stages.max_key_bits``; NPUs: an entry beyond
                           ``ebpf.max_map_entry_bytes``
``variable_offset``        a packet access at a variable offset without
                           ``packet.variable_offset_access``
``window``                 a packet access that may reach past the window (pipelines: the
                           parse depth) or whose offset has no bound
``variable_stack``         a stack access at a variable offset without
                           ``ebpf.variable_stack_access``
``map_value_store``        a plain store through a map-value pointer without
                           ``ebpf.map_value_stores``
``atomic``                 an atomic operation not in ``ebpf.atomics``
``alu``                    a multiplication wider than ``ebpf.mul_max_bits`` (operand ranges from
                           the analysis) or a division / modulo the target lacks (``ebpf.div``:
                           ``constant`` needs a known divisor); a power-of-two constant is a
                           shift and always fits
``verdict``                an exit that may return an XDP action not in ``ebpf.verdicts``
``loop``                   pipelines: a loop without a bound, or whose unrolling (trip bound x
                           dependent operations per iteration) needs more stages than
                           ``stages.count`` x passes
``program_size``, ``stack`` the whole program: more slots than ``ebpf.max_insns``, a deeper
                           call chain of stack frames than ``ebpf.stack_bytes``
========================== ===================================================================

``Feasibility`` holds the reasons (sorted: program-wide first, then by instruction), the
loops (pipelines: trip bound, operations per iteration, unrollable) and the maps' memory
(pipelines: SRAM and TCAM words).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ebpf.analysis import Analysis, Loop, Region, Scalar, analyze
from ebpf.analysis.domain import M32
from ebpf.code.isa import AluOp, AtomicOp, CallKind, Kind, PseudoSrc, Source
from ebpf.kernel_enums import helper_name
from ebpf.loader.elf import ElfObject
from ebpf.loader.program import ProgramDef, SourceLine
from hw.targets import XDP_VERDICTS, PipelineTarget, Target, list_targets

UNROLL_LIMIT = 1024
_ATOMIC_NAMES = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and",
                 AtomicOp.XOR: "xor", AtomicOp.XCHG: "xchg", AtomicOp.CMPXCHG: "cmpxchg"}


def atomic_name(imm: int) -> str:
    """``add``, ``or``, ``and``, ``xor``, ``xchg``, ``cmpxchg``; ``fetch_add`` etc. for the
    FETCH forms of the first four (no profile lists those: every NIC target refuses them,
    as the nfp driver does: drivers/net/ethernet/netronome/nfp/bpf/verifier.c,
    nfp_bpf_check_atomic, "atomic op not implemented" unless a plain BPF_ADD)."""
    if imm in (AtomicOp.XCHG, AtomicOp.CMPXCHG):
        return _ATOMIC_NAMES[AtomicOp(imm)]
    base = _ATOMIC_NAMES.get(imm & ~AtomicOp.FETCH, f"atomic_0x{imm:x}")
    return f"fetch_{base}" if imm & AtomicOp.FETCH else base


_MAP_ALTERNATIVE = {"percpu_array": "array", "percpu_hash": "hash", "lru_hash": "hash",
                    "lru_percpu_hash": "hash"}
_HELPER_FIXES = {
    "fib_lookup": "keep the routes in an lpm_trie map and read next hop and MACs from its "
                  "value, as lpm_router does",
    "redirect_map": "use bpf_redirect(ifindex, 0) with the ifindex from a map value",
    "redirect": "send it back with XDP_TX, or pass it and let the host forward it",
    "tail_call": "merge the programs: call the tail-called code as a sub-program",
    "csum_diff": "update the checksum incrementally with ALU operations (RFC 1624), as "
                 "icmp_echo does",
    "ktime_get_ns": "take the time from a map the control plane updates",
    "trace_printk": "remove the debug output",
    "map_update_elem": "create the entries from the control plane and update values in "
                       "place (stores or atomic add through the value pointer)",
}


@dataclass(frozen=True)
class Reason:
    """One construct the target cannot do, where it is, and what would make it fit."""

    insn: int
    file: str | None
    line: int | None
    what: str
    fix: str
    kind: str
    insns: tuple[int, ...] = ()
    source: str = ""
    scope: str = "site"
    """``site``: only paths through ``insns`` leave the NIC; ``program``: the whole program."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"insns": list(self.insns)}

    @property
    def where(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}" if self.file else "-"

    @property
    def message(self) -> str:
        """One line: ``insn N (file:line): what``."""
        where = f" ({self.where})" if self.file else ""
        return f"insn {self.insn}{where}: {self.what}"


@dataclass
class Feasibility:
    """Whether ``target`` accepts ``program`` as it is; ``reasons`` is empty when it does."""

    target: str
    program: str
    reasons: list[Reason]
    loops: list[dict[str, Any]] = field(default_factory=list)
    maps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "program": self.program, "ok": self.ok,
                "reasons": [r.to_dict() for r in self.reasons]}


def check_target(obj: ElfObject, prog: ProgramDef, target: Target, *,
                 analysis: Analysis | None = None,
                 extra_targets: Iterable[str | os.PathLike[str]] = ()) -> Feasibility:
    """Every construct of ``prog`` (from ``obj``) that ``target`` cannot do (the module
    docstring's table); a target without an ``[ebpf]`` section has none. ``analysis``
    reuses an earlier ``analyze`` of the same program; ``extra_targets`` (profile files)
    join the known targets that fixes name. Raises ``AnalysisError`` on a program the
    analysis cannot take apart."""
    an = analysis if analysis is not None else analyze(prog, obj)
    known = {t.name: t for t in list_targets(extra=extra_targets)} | {target.name: target}
    checker = _Checker(an, obj, prog, target, list(known.values()))
    reasons = checker.run()
    return Feasibility(target.name, prog.name, reasons, checker.loops, checker.maps)


class _Checker:
    def __init__(self, an: Analysis, obj: ElfObject, prog: ProgramDef, target: Target,
                 known: list[Target]) -> None:
        self.an, self.obj, self.prog, self.target, self.known = an, obj, prog, target, known
        self.limits = target.ebpf
        self.found: dict[tuple, list] = {}
        # (verb, window bytes) -> [(slot, last byte)]: accesses past the window, one reason
        # per verb however many bytes (a header read byte by byte is one construct)
        self.past_window: dict[tuple[str, int], list[tuple[int, int]]] = {}
        self.loops: list[dict[str, Any]] = []
        self.maps: list[dict[str, Any]] = []

    def add(self, slot: int, kind: str, what: str, fix: str, scope: str = "site") -> None:
        src = source_line(self.prog, slot)
        key = (kind, what, src.file if src else None, src.line if src else None)
        entry = self.found.setdefault(key, [kind, what, fix, scope, src, []])
        entry[5].append(slot)

    def run(self) -> list[Reason]:
        if self.limits is not None:
            self._program()
            for slot in self.an.reachable_slots():
                self._insn(slot)
            self._verdicts()
            self._maps()
            if isinstance(self.target, PipelineTarget):
                self._loops()
            self._add_past_window()
        out = []
        for kind, what, fix, scope, src, slots in self.found.values():
            slots = sorted(set(slots))
            out.append(Reason(slots[0], src.file if src else None, src.line if src else None,
                              what, fix, kind, tuple(slots), src.text.strip() if src else "",
                              scope))
        return sorted(out, key=lambda r: (r.scope != "program", r.insn, r.kind))

    def _add_past_window(self) -> None:
        """One "window" reason per verb for every access past the window: the furthest
        byte, and how many sites (each slot is still listed in the reason's insns)."""
        for (verb, depth), sites in sorted(self.past_window.items()):
            first = min(slot for slot, _ in sites)
            end = max(e for _, e in sites)
            n = len({slot for slot, _ in sites})
            many = f" ({n} accesses)" if n > 1 else ""
            what = f"packet {verb} up to byte {end}, past the {depth}-byte window{many}"
            src = source_line(self.prog, first)
            key = ("window", what, None, None)
            self.found[key] = ["window", what, f"only headers in the first {depth} bytes can "
                               f"be read; packets that need more are punted", "site", src,
                               [slot for slot, _ in sites]]

    def where(self, has: str) -> str:
        """The known targets that have something, for a fix: 'host, dpu, hxdp'."""
        names = [t.name for t in self.known if t.name != self.target.name and (
            t.ebpf is None or has in t.ebpf.helpers or has in t.ebpf.map_types)]
        return ", ".join(names) if names else "none of the known targets"

    # -- program-wide --------------------------------------------------------------------

    def _program(self) -> None:
        lim = self.limits
        assert lim is not None
        n = self.prog.num_slots
        if lim.max_insns is not None and n > lim.max_insns:
            self.add(0, "program_size", f"program has {n} instructions; {self.target.name} "
                     f"takes at most {lim.max_insns}",
                     "split it: keep the fast path here and move the rest behind XDP_PASS",
                     "program")
        depth, chain = self.an.max_stack_depth()
        if depth > lim.stack_bytes:
            self.add(chain[-1] if chain else 0, "stack",
                     f"uses {depth} bytes of stack along its deepest call chain; "
                     f"{self.target.name} has {lim.stack_bytes}",
                     "keep large structures in a per-packet map value instead of the stack",
                     "program")

    # -- per instruction -----------------------------------------------------------------

    def _insn(self, slot: int) -> None:
        insn = self.an.insn_at[slot]
        kind = insn.kind
        lim = self.limits
        assert lim is not None
        if kind is Kind.CALL and insn.src == CallKind.HELPER:
            name = helper_name(insn.imm)
            if not lim.has_helper(name):
                fix = _HELPER_FIXES.get(name, "")
                self.add(slot, "helper", f"calls bpf_{name}, which {self.target.name} does "
                         f"not implement", (fix + "; " if fix else "")
                         + f"bpf_{name} exists on: {self.where(name)}")
        elif kind is Kind.CALL and insn.src == CallKind.KFUNC:
            self.add(slot, "kfunc", f"calls a kernel function (kfunc, BTF id {insn.imm})",
                     "kfuncs exist only in the kernel: run it on the host")
        elif kind is Kind.LDDW and insn.src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD,
                                                 PseudoSrc.MAP_IDX_VALUE, PseudoSrc.MAP_VALUE):
            self._map_ref(slot, insn.imm)
        elif kind is Kind.ALU and insn.spec.op in (AluOp.MUL, AluOp.DIV, AluOp.MOD):
            self._alu(slot)
        for a in self.an.accesses(slot):
            self._access(a)

    def _map_ref(self, slot: int, index: int) -> None:
        lim = self.limits
        assert lim is not None
        if not 0 <= index < len(self.obj.maps):
            return
        m = self.obj.maps[index]
        if m.type_name not in lim.map_types and lim.has_map_type(m.type_name):
            return  # offload-neutral: the map stays on the host (hw.targets)
        if m.type_name not in lim.map_types:
            alt = _MAP_ALTERNATIVE.get(m.type_name)
            if alt in lim.map_types:
                fix = (f"declare it BPF_MAP_TYPE_{alt.upper()}: the NIC is one processor, "
                       f"per-CPU copies and LRU eviction go (the control plane sums or ages "
                       f"entries)")
            elif m.type_name == "devmap":
                fix = "redirect with bpf_redirect(ifindex, 0) instead of through a DEVMAP"
            elif m.type_name == "prog_array":
                fix = "merge the tail-called programs into this one"
            else:
                fix = f"{m.type_name} maps exist on: {self.where(m.type_name)}"
            self.add(slot, "map_type", f"map '{m.name}' is a {m.type_name}; "
                     f"{self.target.name} has {', '.join(lim.map_types)}", fix)
        entry = m.key_size + m.value_size
        if lim.max_map_entry_bytes is not None and entry > lim.max_map_entry_bytes:
            self.add(slot, "map_memory", f"map '{m.name}' has {entry}-byte entries (key + "
                     f"value); {self.target.name} holds at most {lim.max_map_entry_bytes}",
                     "shrink the key or the value (keep rarely used fields in a second map)")

    def _leafwise_helper_key(self, a) -> bool:
        """A map helper's key or value at one of a few constant stack slots (clang merged two
        calls whose keys differ: r2 a phi of slots): a pipeline's lowering gives each leaf
        its own table and key (``offload.lower.merged``), or cuts the call itself."""
        return (a.helper is not None and isinstance(self.target, PipelineTarget)
                and a.offset is not None and bool(a.offset.values(8)))

    def _access(self, a) -> None:
        lim = self.limits
        assert lim is not None
        verb = "write" if a.write else "read"
        size = f"{a.size} B" if a.size else "bytes"
        if a.region is Region.PACKET and a.offset is not None:
            packet = getattr(self.target, "packet", None)
            off = a.offset
            if not a.is_constant and packet is not None and not packet.variable_offset_access:
                vals = off.values(8)
                count = f", {len(vals)} values" if vals else ""
                fix = ("specialise the parse per path (the offset takes "
                       f"{len(vals)} values: {', '.join(map(str, vals))})" if vals else
                       "read at constant offsets (fixed header layouts)")
                self.add(a.slot, "variable_offset",
                         f"packet {verb} of {size} at a variable offset (data + "
                         f"{off.umin}..{off.umax}{count})",
                         fix + "; variable offsets work on: " + ", ".join(
                             t.name for t in self.known if getattr(t, "packet", None) is None
                             or t.packet.variable_offset_access))
            if packet is not None:
                depth = packet.window_bytes
                if isinstance(self.target, PipelineTarget) and packet.parse_depth_bytes:
                    depth = min(depth, packet.parse_depth_bytes)
                end = off.umax + (a.size or 1)
                if off.umax > M32:
                    self.add(a.slot, "window", f"packet {verb} at an offset the analysis "
                             f"cannot bound", f"bound the offset (e.g. `if (off > "
                             f"{depth - (a.size or 1)}) return XDP_PASS;`) so it stays in the "
                             f"{depth}-byte window")
                elif end > depth:
                    self.past_window.setdefault((verb, depth), []).append((a.slot, end))
        elif a.region is Region.STACK and not a.is_constant and not lim.variable_stack_access \
                and not self._leafwise_helper_key(a):
            self.add(a.slot, "variable_stack", f"stack {verb} at a variable offset",
                     "index the stack with constants (unrolled accesses)")
        if a.region is Region.MAP_VALUE and a.write and not a.atomic and a.helper is None \
                and not lim.map_value_stores:
            self.add(a.slot, "map_value_store", f"plain store into the value of "
                     f"{self.an.describe_map(a.map)}; "
                     f"{self.target.name} does not write map values through pointers",
                     "use __sync_fetch_and_add on the value, or bpf_map_update_elem")
        if a.atomic:
            name = atomic_name(self.an.insn_at[a.slot].imm)
            if name not in lim.atomics:
                self.add(a.slot, "atomic", f"atomic {name}; {self.target.name} has "
                         f"{', '.join(lim.atomics) or 'none'}",
                         "use an atomic add, or keep the value per packet")

    def _alu(self, slot: int) -> None:
        lim = self.limits
        assert lim is not None
        insn = self.an.insn_at[slot]
        spec = insn.spec
        st = self.an.state_before(slot)
        if st is None:
            return
        d = st.reg(insn.dst)
        a = d.num if d.kind is Region.SCALAR else Scalar.UNKNOWN
        if spec.source is Source.X:
            s = st.reg(insn.src)
            b = s.num if s.kind is Region.SCALAR else Scalar.UNKNOWN
        else:
            b = Scalar.const(insn.imm if spec.is64 else insn.imm & M32)
        bits = 64 if spec.is64 else 32
        text = f"r{insn.dst} {AluOp(spec.op).name.lower()}= " + (
            f"r{insn.src}" if spec.source is Source.X else str(insn.imm))
        pow2 = b.is_const and b.value and not b.value & (b.value - 1) and not insn.off
        if spec.op == AluOp.MUL:
            if pow2 or (a.is_const and a.value and not a.value & (a.value - 1)):
                return
            if lim.mul_max_bits == 0:
                self.add(slot, "alu", f"{bits}-bit multiplication ({text}); "
                         f"{self.target.name} has no multiplier",
                         "multiply by a constant with shifts and adds, or precompute the "
                         "product in a map")
            elif spec.is64 and lim.mul_max_bits < 64 and max(a.umax, b.umax) > M32:
                self.add(slot, "alu", f"64-bit multiplication ({text}) with an operand "
                         f"beyond u32; {self.target.name} multiplies {lim.mul_max_bits}-bit "
                         f"operands", "keep both operands below 2^32 (u32 arithmetic)")
            return
        kind = "division" if spec.op == AluOp.DIV else "modulo"
        if pow2 or lim.div == "full":
            return
        if lim.div == "none":
            self.add(slot, "alu", f"{bits}-bit {kind} ({text}); {self.target.name} has no "
                     f"divider", "use a power-of-two divisor (a shift / mask), or precompute "
                     "the result in a map indexed by the dividend")
        elif insn.off:
            self.add(slot, "alu", f"signed {kind} ({text}); {self.target.name} divides "
                     f"unsigned values by constants", "use unsigned operands")
        elif not b.is_const:
            self.add(slot, "alu", f"{kind} by a non-constant ({text}); {self.target.name} "
                     f"divides by constants only", "divide by a constant known at load time "
                     "(a #define or a const volatile global), or a power of two")
        elif spec.is64 and a.umax > (1 << max(lim.mul_max_bits, 32)) - 1:
            self.add(slot, "alu", f"{kind} of a dividend beyond u32 ({text}); "
                     f"{self.target.name} divides u32 values", "keep the dividend below 2^32")

    def _verdicts(self) -> None:
        """Each definition of r0 that reaches an exit of the entry function with a value the
        target cannot return (clang merges returns into one ``exit``: the definition, not
        the exit, is where the path goes wrong).

        Only values the code returns count: constants and what it computes (their ranges),
        and XDP_REDIRECT from ``bpf_redirect`` / ``bpf_redirect_map``. A value read from a
        map or the packet is the control plane's or the sender's, not a code the program
        returns: claiming XDP_REDIRECT for every ``return *action`` would call a filter
        that never returns 4 unfit (``offload map`` reports the verdicts its trace saw)."""
        lim = self.limits
        assert lim is not None
        for slot, reg in _r0_definitions(self.an):
            insn = self.an.insn_at[slot]
            if insn.kind is Kind.CALL and insn.src == CallKind.HELPER and \
                    helper_name(insn.imm) in ("redirect", "redirect_map"):
                codes = {XDP_VERDICTS.index("redirect")}
            elif insn.kind in (Kind.LDX, Kind.LDXSX) and self._loads_data(slot, insn.src):
                continue
            else:
                num = self._reg_after(slot, reg)
                codes = {c for c in range(len(XDP_VERDICTS)) if num.contains(c)}
            for code in sorted(codes):
                name = XDP_VERDICTS[code]
                if name not in lim.verdicts:
                    self.add(slot, "verdict", f"may return XDP_{name.upper()} ({code}); "
                             f"{self.target.name} supports "
                             f"{', '.join('XDP_' + v.upper() for v in lim.verdicts)}",
                             "rewrite the headers and return XDP_TX, or XDP_PASS and let the "
                             "host forward it")

    def _loads_data(self, slot: int, src: int) -> bool:
        """Does the load at ``slot`` read a map value or the packet (on every path)?"""
        regions = {st.reg(src).kind for _, st in self.an.iter_states(slot)}
        return bool(regions) and regions <= {Region.MAP_VALUE, Region.PACKET}

    def _reg_after(self, slot: int, reg: int) -> Scalar:
        cfg = self.an.cfg
        block = cfg.block_of(slot)
        later = [s for s in block.slots if s > slot]
        nxt = later[0] if later else block.succs[0] if block.succs else None
        st = self.an.state_before(nxt, ()) if nxt is not None else None
        if st is None:
            return Scalar.UNKNOWN
        v = st.reg(reg)
        return v.num if v.kind is Region.SCALAR else Scalar.UNKNOWN

    # -- pipelines: memory and loops -----------------------------------------------------

    def _maps(self) -> None:
        used = sorted({self.an.insn_at[s].imm for s in self.an.reachable_slots()
                       if self.an.insn_at[s].kind is Kind.LDDW
                       and self.an.insn_at[s].src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD,
                                                      PseudoSrc.MAP_IDX_VALUE,
                                                      PseudoSrc.MAP_VALUE)})
        refs = {i: [s for s in self.an.reachable_slots() if self.an.insn_at[s].kind is Kind.LDDW
                    and self.an.insn_at[s].imm == i] for i in used}
        t = self.target
        if not isinstance(t, PipelineTarget):
            return
        sram_total = t.stages.sram.total_entries * t.stages.count
        tcam_total = t.stages.tcam.total_entries * t.stages.count
        need = []
        for i in used:
            if not 0 <= i < len(self.obj.maps):
                continue
            m = self.obj.maps[i]
            key_bits = 8 * (m.key_size - 4 if m.type_name == "lpm_trie" else m.key_size)
            vbits = 8 * m.value_size
            sram_w, tcam_w = t.stages.sram.width_bits, t.stages.tcam.width_bits
            entries = m.max_entries
            if m.type_name in ("array", "percpu_array") or m.is_global_data:
                sram, tcam = entries * math.ceil(vbits / sram_w), 0
            elif m.type_name == "lpm_trie":
                sram = entries * math.ceil(vbits / sram_w)
                tcam = entries * math.ceil(key_bits / tcam_w)
            else:
                sram, tcam = entries * math.ceil((key_bits + vbits) / sram_w), 0
            self.maps.append({"name": m.name, "type": m.type_name, "entries": entries,
                              "key_bytes": m.key_size, "value_bytes": m.value_size,
                              "sram_words": sram, "tcam_words": tcam})
            need.append((sram + tcam, i, m, sram, tcam))
            if key_bits > t.stages.max_key_bits:
                for s in refs[i]:
                    self.add(s, "map_memory", f"map '{m.name}' has a {key_bits}-bit key; "
                             f"{t.name} matches at most {t.stages.max_key_bits} bits",
                             "shorten the key (hash the wide fields into a narrower one)")
        sram_left, tcam_left = sram_total, tcam_total
        for _, i, m, sram, tcam in sorted(need, key=lambda n: n[:2]):
            for what, words, left, total in (("SRAM", sram, sram_left, sram_total),
                                             ("TCAM", tcam, tcam_left, tcam_total)):
                if words > left:
                    others = "" if left == total else f" ({left} left after the smaller maps)"
                    for s in refs[i]:
                        self.add(s, "map_memory", f"map '{m.name}' ({m.max_entries} entries) "
                                 f"needs {words} {what} words; {t.name} has {total} in all "
                                 f"{t.stages.count} stages{others}",
                                 f"lower max_entries to about {m.max_entries * left // words} "
                                 f"or keep the table on the host")
            sram_left = max(0, sram_left - sram)
            tcam_left = max(0, tcam_left - tcam)

    def _loops(self) -> None:
        t = self.target
        assert isinstance(t, PipelineTarget)
        passes = (t.recirculation.max_passes or 1) if t.recirculation.allowed else 1
        capacity = t.stages.count * passes
        for loop in self.an.cfg.iter_loops():
            if not self.an.is_reachable(loop.header):
                continue
            trips = self.an.loop_trips(loop, UNROLL_LIMIT)
            depth = body_depth(self.an, loop)
            where = f"loop in {loop.func} (slots {loop.first_slot}-{loop.last_slot})"
            info = {"function": loop.func, "header": loop.header, "trips": trips,
                    "ops_per_iteration": depth,
                    "stages": None if trips is None else trips * depth}
            info["unrollable"] = trips is not None and trips * depth <= capacity
            self.loops.append(info)
            runs = "run-to-completion targets (" + ", ".join(
                x.name for x in self.known if not isinstance(x, PipelineTarget)) + ")"
            if trips is None:
                self.add(loop.header, "loop", f"{where} has no bound the analysis can find "
                         f"(over {UNROLL_LIMIT} iterations, or not counted)",
                         f"give it a small constant bound and #pragma unroll, or run it on "
                         f"{runs}")
            elif not info["unrollable"]:
                fit = capacity // depth
                self.add(loop.header, "loop", f"{where} runs up to {trips} times x {depth} "
                         f"dependent operations = {trips * depth} stages; {t.name} has "
                         f"{t.stages.count} stages x {passes} passes",
                         f"at most {fit} iterations unroll into the stages: lower the bound, "
                         f"or run it on {runs}")


def source_line(prog: ProgramDef, slot: int) -> SourceLine | None:
    """The C line of ``slot``: the nearest line-info entry at or before it in its function
    that names a real line (clang emits line 0 for code it made up)."""
    func = prog.function_at(slot)
    lo = func.start if func is not None else 0
    for s in range(slot, lo - 1, -1):
        src = prog.source_line(s)
        if src is not None and src.line > 0:
            return src
    return prog.source_line(slot)


def body_depth(an: Analysis, loop: Loop) -> int:
    """Dependent operations in one iteration: the longest def-use chain through the body
    (registers and constant stack slots), back edges cut."""
    fcfg = an.cfg.get_function(loop.func)
    order = [b for b in fcfg.rpo if b in loop.body]
    rank = {b: i for i, b in enumerate(order)}
    outs: dict[int, dict[Any, int]] = {}
    best = 1
    for b in order:
        level: dict[Any, int] = {}
        for p in fcfg.preds[b]:
            if p in rank and rank[p] < rank[b]:
                for k, v in outs.get(p, {}).items():
                    level[k] = max(level.get(k, 0), v)
        for slot in fcfg.blocks[b].slots:
            uses, defs = _uses_defs(an.insn_at[slot])
            d = 1 + max((level.get(u, 0) for u in uses), default=0)
            best = max(best, d)
            for r in defs:
                level[r] = d
        outs[b] = level
    return best


def _uses_defs(insn) -> tuple[list[Any], list[Any]]:
    kind, spec = insn.kind, insn.spec
    if kind in (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP):
        uses = [] if spec.op == AluOp.MOV and spec.source is Source.K else [insn.dst]
        if spec.source is Source.X:
            uses.append(insn.src)
        return uses, [insn.dst]
    if kind in (Kind.LDX, Kind.LDXSX):
        slot = ("fp", insn.off) if insn.src == 10 else None
        return [insn.src] + ([slot] if slot else []), [insn.dst]
    if kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
        uses = [insn.dst] + ([insn.src] if kind is not Kind.ST else [])
        return uses, [("fp", insn.off)] if insn.dst == 10 else []
    if kind is Kind.JCOND:
        return [insn.dst] + ([insn.src] if spec.source is Source.X else []), []
    if kind is Kind.CALL:
        return [1, 2, 3, 4, 5], [0]
    if kind is Kind.LDDW:
        return [], [insn.dst]
    return [], []


def _r0_definitions(an: Analysis) -> list[tuple[int, int]]:
    """(slot, register) of every write whose value reaches r0 at an exit of the entry
    function, following register copies back (clang merges the returns: ``r6 = 2`` on one
    path, ``r6 = r0`` after a helper on another, then ``w0 = w6; exit``)."""
    fcfg = an.cfg.get_function(an.cfg.entry)
    edges = an.feasible_edges(())
    defs: set[tuple[int, int]] = set()
    seen: set[tuple[int, int]] = set()
    work = [(b, len(fcfg.blocks[b].slots) - 1, 0) for b in fcfg.exits
            if an.is_reachable(fcfg.blocks[b].last)]
    while work:
        b, pos, reg = work.pop()
        block = fcfg.blocks[b]
        for i in range(pos - 1, -1, -1):
            slot = block.slots[i]
            insn = an.insn_at[slot]
            kind = insn.kind
            if kind is Kind.CALL and reg <= 5:
                defs.add((slot, reg))
                break
            if insn.dst != reg or kind not in (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP,
                                               Kind.LDX, Kind.LDXSX, Kind.LDDW):
                continue
            if kind is Kind.ALU and insn.spec.op == AluOp.MOV and insn.spec.source is Source.X \
                    and not insn.off:
                reg = insn.src
                continue
            defs.add((slot, reg))
            break
        else:
            for p in fcfg.preds[b]:
                if (p, b) in edges and (p, reg) not in seen:
                    seen.add((p, reg))
                    work.append((p, len(fcfg.blocks[p].slots), reg))
    return sorted(defs)
