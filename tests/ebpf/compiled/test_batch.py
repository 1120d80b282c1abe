"""Batches that follow tail calls (ebpf.compiled.batch's driver, CompiledVm.run_xdp_paths)
against the reference VM one packet at a time: assembled programs that chain tail calls up
to the kernel's limit, tail-call empty and out-of-range slots, call back into the VM before
and after a tail call, and run paths longer than the native path buffer."""

from __future__ import annotations

import random
import re

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.columns import tail_records
from ebpf.compiled import CompiledVm, batch
from ebpf.compiled import codegen as cg
from ebpf.errors import VmError
from ebpf.kernel_enums import HELPER_IDS, MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm
from tests.ebpf.compiled.test_maplookup import _spied

TAIL, SMP_ID = HELPER_IDS["tail_call"], HELPER_IDS["get_smp_processor_id"]


def _prog(name: str, text: str) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef(name, "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function(name, 0, p.num_slots, "xdp")]
    return p


# entry: a loop of (byte 13 & 63) * 70 turns (a path longer than the native buffer before
# any callback), a helper call back if byte 14's low bit, then tail-call jmp[byte 15 & 7]
# (0-2 programs, 3 empty, 4-7 beyond max_entries: fall through to XDP_PASS)
ENTRY = f"""
mov %r6, %r1
ldxw %r7, [%r1+0]
ldxw %r8, [%r1+4]
mov %r2, %r7
add %r2, 18
jgt %r2, %r8, short
ldxb %r9, [%r7+13]
and %r9, 63
mul %r9, 70
spin:
jeq %r9, 0, spun
sub %r9, 1
ja spin
spun:
ldxb %r3, [%r7+14]
jset %r3, 1, helper
ja go
helper:
call {SMP_ID}
go:
ldxb %r3, [%r7+15]
and %r3, 7
mov %r1, %r6
lddw %r2, map_idx 0
call {TAIL}
mov %r0, 2
exit
short:
mov %r0, 1
exit
"""
# a: tail-call jmp[byte 16 & 7]; XDP_TX when that falls through
PROG_A = f"""
ldxw %r7, [%r1+0]
ldxw %r8, [%r1+4]
mov %r2, %r7
add %r2, 18
jgt %r2, %r8, out
ldxb %r3, [%r7+16]
and %r3, 7
lddw %r2, map_idx 0
call {TAIL}
out:
mov %r0, 3
exit
"""
# b: a helper call back first, a loop of (byte 17) * 20 turns, then tail-call
# jmp[byte 12 >> 2 & 7] on the VM's handler (the packet has a view), else verdict byte 12 & 3
PROG_B = f"""
mov %r6, %r1
call {SMP_ID}
ldxw %r7, [%r6+0]
ldxw %r8, [%r6+4]
mov %r2, %r7
add %r2, 18
jgt %r2, %r8, pass
ldxb %r9, [%r7+17]
mul %r9, 20
spin:
jeq %r9, 0, spun
sub %r9, 1
ja spin
spun:
mov %r1, %r6
lddw %r2, map_idx 0
ldxb %r3, [%r7+12]
rsh %r3, 2
and %r3, 7
call {TAIL}
ldxb %r0, [%r7+12]
and %r0, 3
exit
pass:
mov %r0, 2
exit
"""
# c: tail-call a (a -> c -> a ... until MAX_TAIL_CALL_CNT when a's byte 16 picks c)
PROG_C = f"""
lddw %r2, map_idx 0
mov %r3, 0
call {TAIL}
mov %r0, 1
exit
"""


def _vms() -> tuple[Vm, CompiledVm]:
    maps = [MapDef("jmp", MAP_TYPE_IDS["prog_array"], 4, 4, 4,
                   values={0: "a", 1: "b", 2: "c"})]
    progs = {"a": _prog("a", PROG_A), "b": _prog("b", PROG_B), "c": _prog("c", PROG_C)}
    return (Vm(maps, _prog("e", ENTRY), resolver=progs.__getitem__),
            CompiledVm(maps, _prog("e", ENTRY), resolver=progs.__getitem__))


def _packets(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        head = bytearray(rng.randbytes(18))
        head[13] = rng.choice([0, 0, 0, 1, 2, 63])  # mostly short loops, some long
        head[17] = rng.choice([0, 1, 3, 255])
        out.append(bytes(head[:rng.choice([14, 17, 18, 18, 18])]) + rng.randbytes(
            rng.choice([0, 10, 60])))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_paths_across_tail_calls_equal_the_vm(seed, monkeypatch):
    """Per packet, the batch's verdict, output, steps, path (across every program it
    tail-called into) and tail calls (taken, empty slot, out of range, at the limit) are
    the VM's trace's; the path log is small, so chunks stop and resume on it. Tail calls
    run natively until a packet's first call back (then on the VM's handler)."""
    monkeypatch.setattr(batch, "PLOG_WORDS", 3 * 4096)
    calls = _spied(monkeypatch)
    ref, fast = _vms()
    packets = _packets(seed, 1500)
    cols, pc = fast.run_xdp_paths(packets)
    seen = set()
    expected = 0
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        j = pc.path_id[i]
        assert (int(cols.verdict[i]), cols.packet_out(i), int(pc.steps[i]), pc.paths[j],
                pc.tail_calls[j]) == (r.verdict, r.packet_out, r.trace.insns,
                                      tuple(r.trace.path), tail_records(r.trace.tail_calls)), i
        ids = [h.id for h in r.trace.helper_calls]
        if SMP_ID in ids:  # each call back, and every tail call after the first
            expected += ids.count(SMP_ID) + ids[ids.index(SMP_ID):].count(TAIL)
        targets = [t.target for t in r.trace.tail_calls]
        seen.add(("chain" if len(targets) > 30 else len(targets), targets[-1:] == [None]))
        seen.add(("taken", len(targets) - targets.count(None)))
        seen.add(("long", len(r.trace.path) > 4096))
    # none, one to three and chains of tail calls (each packet's last falls through), one
    # to many taken, paths beyond the native buffer
    assert {(0, False), (1, True), (2, True), (3, True), ("chain", True),
            ("long", True), ("taken", 1), ("taken", 2), ("taken", 33)} <= seen
    assert len([c for c in calls if c != cg.INTERP_FLUSH]) == expected


def test_a_runt_after_tail_calls_is_the_vms_error():
    """A frame shorter than ETH_HLEN among tail-calling packets: the VM's error, naming the
    packet; the same compiled VM then runs the stream without it as the VM does."""
    ref, fast = _vms()
    packets = _packets(3, 300)
    packets[200:200] = [bytes(9)]
    with pytest.raises(VmError) as err:
        ref.run_xdp(bytes(9))
    with pytest.raises(VmError, match=re.escape(f"packet 200: {err.value}")):
        fast.run_xdp_paths(packets)
    del packets[200]
    cols, pc = fast.run_xdp_paths(packets)
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), pc.paths[pc.path_id[i]]) == \
            (r.verdict, tuple(r.trace.path)), i
