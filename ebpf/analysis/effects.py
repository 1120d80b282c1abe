"""Side-effect sites: where a program changes something the rest of the world can see.

A site is one instruction (slot) with one ``EffectKind``:

- ``map_write``: ``bpf_map_update_elem`` / ``delete`` / ``push`` / ``pop``, and stores and
  atomics through a map-value pointer (global variables in ``.data`` / ``.bss`` included);
- ``packet_write``: stores through a packet pointer, ``bpf_xdp_adjust_head`` / ``_tail`` /
  ``_meta``, ``bpf_xdp_store_bytes``;
- ``redirect``: ``bpf_redirect`` / ``bpf_redirect_map`` (they only set where an XDP_REDIRECT
  verdict goes, so running them twice shows nowhere: ``visible`` is False);
- ``tail_call``: ``bpf_tail_call`` (when it succeeds, the rest runs in another program);
- ``output``: perf event and ring buffer output, ``bpf_trace_printk``;
- ``unknown``: a helper the tables below do not classify (taken as visible).

Which memory a store touches comes from the abstract interpretation (``Analysis.accesses``),
joined over call strings: a store that writes a map value in one call string is a map write.
``effects_by_block`` groups the sites per basic block (keyed by the block's first slot).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ebpf.analysis.dataflow import Analysis, Region
from ebpf.code.isa import CallKind, Kind
from ebpf.kernel_enums import helper_name


class EffectKind(StrEnum):
    MAP_WRITE = "map_write"
    PACKET_WRITE = "packet_write"
    REDIRECT = "redirect"
    TAIL_CALL = "tail_call"
    OUTPUT = "output"
    UNKNOWN = "unknown"


# Helpers with an effect: kind and the argument register that holds the map (or None).
HELPER_EFFECTS: dict[str, tuple[EffectKind, int | None]] = {
    "map_update_elem": (EffectKind.MAP_WRITE, 1), "map_delete_elem": (EffectKind.MAP_WRITE, 1),
    "map_push_elem": (EffectKind.MAP_WRITE, 1), "map_pop_elem": (EffectKind.MAP_WRITE, 1),
    "xdp_adjust_head": (EffectKind.PACKET_WRITE, None),
    "xdp_adjust_tail": (EffectKind.PACKET_WRITE, None),
    "xdp_adjust_meta": (EffectKind.PACKET_WRITE, None),
    "xdp_store_bytes": (EffectKind.PACKET_WRITE, None),
    "redirect": (EffectKind.REDIRECT, None), "redirect_map": (EffectKind.REDIRECT, 1),
    "tail_call": (EffectKind.TAIL_CALL, 2),
    "perf_event_output": (EffectKind.OUTPUT, 2), "ringbuf_output": (EffectKind.OUTPUT, 1),
    "ringbuf_reserve": (EffectKind.OUTPUT, 1), "ringbuf_submit": (EffectKind.OUTPUT, None),
    "ringbuf_discard": (EffectKind.OUTPUT, None), "trace_printk": (EffectKind.OUTPUT, None),
    "trace_vprintk": (EffectKind.OUTPUT, None), "xdp_output": (EffectKind.OUTPUT, 2),
}
# Helpers that only read (or write the program's own stack): no effect.
PURE_HELPERS = frozenset({
    "map_lookup_elem", "map_lookup_percpu_elem", "map_peek_elem", "ktime_get_ns",
    "ktime_get_boot_ns", "ktime_get_coarse_ns", "ktime_get_tai_ns", "jiffies64",
    "get_prandom_u32", "get_smp_processor_id", "get_numa_node_id", "csum_diff", "fib_lookup",
    "xdp_load_bytes", "xdp_get_buff_len", "check_mtu", "get_hash_recalc",
})


@dataclass(frozen=True)
class Effect:
    """One side-effect site."""

    slot: int
    kind: EffectKind
    what: str
    """For people: ``bpf_map_update_elem(conn_table)``, ``store u16 to packet``."""
    map: str | None = None
    helper: str | None = None

    @property
    def visible(self) -> bool:
        """Would running it twice for one packet show (a host re-run after a punt)?"""
        return self.kind is not EffectKind.REDIRECT


_WIDTH = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}


def find_effects(analysis: Analysis) -> list[Effect]:
    """Every side-effect site the analysis reaches, in slot order."""
    out: list[Effect] = []
    for slot in analysis.reachable_slots():
        insn = analysis.insn_at[slot]
        kind = insn.kind
        if kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
            for a in analysis.accesses(slot):
                verb = "atomic" if a.atomic else "store"
                size = _WIDTH.get(a.size or 0, "")
                if a.region is Region.MAP_VALUE:
                    name = analysis.get_map_name(a.map)
                    out.append(Effect(slot, EffectKind.MAP_WRITE,
                                      f"{verb} {size} to the value of "
                                      f"{analysis.describe_map(a.map)}", name))
                elif a.region is Region.PACKET:
                    out.append(Effect(slot, EffectKind.PACKET_WRITE, f"{verb} {size} to packet"))
                elif a.region is Region.UNKNOWN:
                    out.append(Effect(slot, EffectKind.UNKNOWN,
                                      f"{verb} {size} through a pointer the analysis cannot "
                                      f"name"))
        elif kind is Kind.CALL and insn.src == CallKind.HELPER:
            name = helper_name(insn.imm)
            if name in PURE_HELPERS:
                continue
            effect, map_arg = HELPER_EFFECTS.get(name, (EffectKind.UNKNOWN, None))
            map_name = None
            if map_arg is not None:
                st = analysis.state_before(slot)
                v = st.reg(map_arg) if st is not None else None
                if v is not None and v.kind is Region.MAP_PTR:
                    map_name = analysis.get_map_name(v.map)
            what = f"bpf_{name}(" + (map_name or "") + ")"
            out.append(Effect(slot, effect, what, map_name, name))
        elif kind is Kind.CALL and insn.src == CallKind.KFUNC:
            out.append(Effect(slot, EffectKind.UNKNOWN, f"kfunc call (BTF id {insn.imm})"))
    return out


def effects_by_block(analysis: Analysis,
                     effects: Iterable[Effect] | None = None) -> dict[int, tuple[Effect, ...]]:
    """The side-effect sites of each basic block (by its first slot); blocks without any
    are left out."""
    found: dict[int, list[Effect]] = {}
    for e in find_effects(analysis) if effects is None else effects:
        found.setdefault(analysis.cfg.block_of(e.slot).start, []).append(e)
    return {b: tuple(sorted(es, key=lambda e: e.slot)) for b, es in sorted(found.items())}
