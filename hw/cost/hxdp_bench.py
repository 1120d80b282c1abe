"""The hXDP paper's microbenchmarks as programs, and what the VLIW model gives for them.

Brunella et al., "hXDP: Efficient Software Packet Processing on FPGA NICs", OSDI 2020,
sec. 5.2.2 and Figs. 13-15, measured on the NetFPGA prototype with 64 B packets. The paper
does not list the programs; they are written here in eBPF assembler from its descriptions
and from its artifact repository (github.com/axbryd/hXDP-Artifacts): the instruction-memory
images the testbed loads (``testbed_scripts/2_datapath_programming/SPH_roms``) and the
benchmark sources (``xdp_progs``). Read for facts only; the programs below are ours.

- XDP_DROP: ``r0 = XDP_DROP; exit``. The artifact's ``XDP_DROP.bin`` is one row holding
  both; ``XDP_DROP_early_exit.bin`` one row with a parametrized exit.
- XDP_TX: the paper's text says the program parses the Ethernet header and swaps the MAC
  addresses, but the image the testbed loads for it (``XDP_TX_early_exit.bin``) is one row
  holding one parametrized exit returning XDP_TX: no parsing, no swap. The published
  22.5 Mpps is therefore the transmit path's rate, not the cost of a MAC swap
  (``tx_cycles`` in the profile is fitted to it); the corpus' xdp_tx.c (which does swap)
  is an application-level check (``hw.cost.validation``).
- redirect: ``bpf_redirect(port, 0)``, then exit with its result ("like XDP_TX, but ...
  calling a specific XDP helper function").
- map access (Fig. 14): the artifact's ``xdp_map_access_kern.c`` shape: a packet bounds
  check, a key of 1-16 B on the stack, ``bpf_map_lookup_elem`` on a hash map, ``*value +=
  1`` on a hit, an update on a miss. The source returns XDP_DROP; Fig. 14's caption says
  forwarding throughput, so the benchmark forwards (XDP_TX): the same cycles either way,
  the hit path being longer than ``tx_cycles``. Written in its shortest form (the key
  stored as an immediate, no store before the bounds check); clang's output of the source
  is longer (docs/calibration.md).
- helper calls (Fig. 15): N calls of ``bpf_csum_diff`` over the 20 B IPv4 header ("a helper
  function that performs an incremental checksum calculation"), then XDP_TX. The paper
  does not say how the calls' arguments are set up; here each call sets its own (r1-r5),
  as clang emits a call whose arguments the eBPF convention says the previous call
  clobbered (the VLIW model's ``helper_args`` removes the repeated set-up, as Sephirot's
  helpers leave r1-r5 alone). The calls are independent (a chained checksum would put the
  fold's ALU chain between calls, against the published one cycle per call).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ebpf.code.asm import assemble_insns
from ebpf.kernel_enums import HELPER_IDS, MAP_TYPE_IDS
from ebpf.loader.program import ElfObject, MapDef, ProgramDef
from ebpf.vm.machine import Vm
from ebpf.vm.trace import Trace
from hw.rtc.vliw import DEFAULT_OPTIMIZATIONS, packet_cycles, schedule_program
from hw.targets import VliwTarget

PACKET = bytes(12) + b"\x08\x00" + bytes([0x45]) + bytes(49)
"""A 64 B IPv4 frame (zero addresses): every benchmark takes the same path on it."""

_BOUNDS = """
    ldxw %r2, [%r1+4]
    ldxw %r6, [%r1+0]
    mov %r3, %r6
    add %r3, {need}
    jgt %r3, %r2, +{skip}
"""


def drop() -> str:
    return "mov %r0, 1\nexit"


def tx() -> str:
    return "mov %r0, 3\nexit"


def redirect() -> str:
    return f"mov %r1, 1\nmov %r2, 0\ncall {HELPER_IDS['redirect']}\nexit"


def map_access(key_bytes: int) -> str:
    """Lookup of a ``key_bytes`` key (1, 2, 4, 8 or 16) in map 0: count on a hit, insert on
    a miss; forward (XDP_TX)."""
    stores = {1: ["stb [%r10-16], 23"], 2: ["sth [%r10-16], 23"], 4: ["stw [%r10-16], 23"],
              8: ["stdw [%r10-16], 23"], 16: ["stdw [%r10-16], 23", "stdw [%r10-8], 0"]}
    body = "\n".join(stores[key_bytes]) + f"""
    mov %r2, %r10
    add %r2, -16
    lddw %r1, map_idx 0
    call {HELPER_IDS['map_lookup_elem']}
    jeq %r0, 0, +5
    ldxdw %r1, [%r0+0]
    add %r1, 1
    stxdw [%r0+0], %r1
    mov %r0, 3
    exit
    stdw [%r10-24], 1
    mov %r2, %r10
    add %r2, -16
    mov %r3, %r10
    add %r3, -24
    lddw %r1, map_idx 0
    mov %r4, 0
    call {HELPER_IDS['map_update_elem']}
    mov %r0, 3
    exit"""
    skip = _slots(body)
    return _BOUNDS.format(need=14, skip=skip) + body + "\nmov %r0, 1\nexit"


def _slots(text: str) -> int:
    return sum(i.slots for i in assemble_insns(text, check=False))


def helper_calls(n: int, ethertype_test: bool = False) -> str:
    """``n`` calls of bpf_csum_diff over the IPv4 header, then XDP_TX; with
    ``ethertype_test`` an IPv4 EtherType test first, as the artifact's ``xdp_csum_kern.c``
    has (a what-if in docs/calibration.md: the Fig. 15 program is not published)."""
    call = f"""
    mov %r1, 0
    mov %r2, 0
    mov %r3, %r6
    add %r3, 14
    mov %r4, 20
    mov %r5, 0
    call {HELPER_IDS['csum_diff']}"""
    body = call * n + "\nmov %r0, 3\nexit"
    if ethertype_test:
        body = f"ldxh %r3, [%r6+12]\njne %r3, 8, +{_slots(body)}\n" + body
    skip = _slots(body)
    return _BOUNDS.format(need=34, skip=skip) + body + "\nmov %r0, 1\nexit"


@dataclass(frozen=True)
class BenchCost:
    """One benchmark on the VLIW model: cycles per packet and the rate, Mpps."""

    cycles: int
    mpps: float


def bench_object(text: str, key_bytes: int = 0, packet: bytes = PACKET,
                 ) -> tuple[ElfObject, ProgramDef, Trace]:
    """The benchmark ``text`` as an object (a hash map of ``key_bytes`` keys when given) and
    its VM trace on ``packet`` (64 B by default) in steady state (the second of two runs, so
    a map benchmark's entry exists)."""
    maps = []
    if key_bytes:
        maps = [MapDef("rxcnt", MAP_TYPE_IDS["hash"], key_bytes, 8, 256)]
    prog = ProgramDef("bench", "xdp", "xdp", assemble_insns(text), [], {},
                      [0] if maps else [])
    obj = ElfObject("<hxdp benchmark>", [prog], maps, "GPL")
    vm = Vm(obj, prog)
    vm.run_xdp(packet)
    return obj, prog, vm.run_xdp(packet).trace


def run(target: VliwTarget, text: str, *, key_bytes: int = 0,
        optimizations: Iterable[str] = DEFAULT_OPTIMIZATIONS) -> BenchCost:
    """The model's cycles and Mpps for the benchmark ``text`` (``bench_object``); the core's
    rate, the packet's two bus frames being below every benchmark's cycles."""
    _, prog, trace = bench_object(text, key_bytes)
    sched = schedule_program(prog, target, optimizations=optimizations)
    cycles = packet_cycles(sched, trace, target).cycles
    return BenchCost(cycles, target.clock_mhz / cycles)
