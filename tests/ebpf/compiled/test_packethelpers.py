"""Native packet helpers in batches (``ebpf.compiled.packethelpers``) against the reference
VM packet by packet: bpf_xdp_adjust_head / tail / meta, get_buff_len, load / store_bytes
and bpf_csum_diff give the VM's results, bytes and metadata, without calling back."""

from __future__ import annotations

import errno
import random
from collections import Counter

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.compiled import CompiledVm
from ebpf.compiled import codegen as cg
from ebpf.compiled.batch import MAX_LINEAR
from ebpf.errors import VmError
from ebpf.helpers.core import HelperEnv, s32
from ebpf.kernel_enums import HELPER_IDS, MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm

EINVAL, EACCES, EFAULT = (1 << 64) - errno.EINVAL, (1 << 64) - errno.EACCES, \
    (1 << 64) - errno.EFAULT
PACKET_HELPERS = {"xdp_adjust_head", "xdp_adjust_tail", "xdp_adjust_meta",
                  "xdp_get_buff_len", "xdp_load_bytes", "xdp_store_bytes", "csum_diff"}
FRAG_BOUND = {"xdp_adjust_tail", "xdp_get_buff_len", "xdp_load_bytes", "xdp_store_bytes"}
"""Helpers that reach the fragments of a frame longer than the linear part."""
OPS = ["xdp_adjust_head", "xdp_adjust_tail", "xdp_adjust_meta", "xdp_get_buff_len",
       "xdp_load_bytes", "xdp_store_bytes", "get_smp_processor_id"]
"""Control op (low 3 bits) -> helper; the last one always calls back (the VM's view of the
packet is built mid-packet, then native helpers move it again)."""
WATCHED = PACKET_HELPERS | {"get_smp_processor_id"}
"""The helpers whose callbacks are counted (map lookups have their own native path)."""


def _prog(text: str) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef("t", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("t", 0, p.num_slots, "xdp")]
    return p


def _round(k: int) -> str:
    """Control round ``k``: op word at fp-24+8k, offset at fp-20+8k (sign-extended to 64
    bits: the helpers take its low 32 as s32); the result to fp-48+8k."""
    op, off, res = -24 + 8 * k, -20 + 8 * k, -48 + 8 * k
    calls = "\n".join(f"op{k}_{i}: call {HELPER_IDS[name]}\nja done{k}"
                      for i, name in enumerate(OPS))
    tests = "\n".join(f"jeq %r7, {i}, op{k}_{i}" for i in range(len(OPS)))
    return f"""
ldxw %r7, [%r10{op:+d}]
ldxsw %r2, [%r10{off:+d}]
mov %r1, %r6
mov %r3, %r10
add %r3, -128
ldxw %r4, [%r10{op:+d}]
rsh %r4, 8
and %r4, 63
ldxw %r5, [%r10{op:+d}]
and %r5, 0x4000
jeq %r5, 0, +1
mov %r4, 0x10000
and %r7, 7
{tests}
mov %r0, 0x7777
ja done{k}
{calls}
done{k}: stxdw [%r10{res:+d}], %r0
"""


# Three helper calls chosen by 24 control bytes at packet offset 14 (packets of 38 bytes or
# more; shorter ones pass untouched). Then: the three results over the packet's first 24
# bytes (where there is room), a mark in the metadata (where there is some), and the 8
# bytes at the packet's *old* data pointer, where they are inside the new window, copied to
# data + 24 with verdict XDP_TX (else XDP_PASS).
ADJUST = """
mov %r6, %r1
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r9, %r2
mov %r4, %r2
add %r4, 38
jgt %r4, %r3, short
ldxdw %r5, [%r2+14]
stxdw [%r10-24], %r5
ldxdw %r5, [%r2+22]
stxdw [%r10-16], %r5
ldxdw %r5, [%r2+30]
stxdw [%r10-8], %r5
""" + "".join(_round(k) for k in range(3)) + """
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
ldxw %r4, [%r6+8]
mov %r5, %r2
add %r5, 24
jgt %r5, %r3, meta
ldxdw %r5, [%r10-48]
stxdw [%r2+0], %r5
ldxdw %r5, [%r10-40]
stxdw [%r2+8], %r5
ldxdw %r5, [%r10-32]
stxdw [%r2+16], %r5
meta: mov %r5, %r4
add %r5, 4
jgt %r5, %r2, stale
stw [%r4+0], 0x5a5aa5a5
stale: mov %r0, 2
jlt %r9, %r4, out
mov %r5, %r9
add %r5, 8
jgt %r5, %r3, out
ldxdw %r5, [%r9+0]
mov %r0, 3
mov %r7, %r2
add %r7, 32
jgt %r7, %r3, out
stxdw [%r2+24], %r5
out: exit
short: mov %r0, 2
exit
"""

def _helper_slots(prog: ProgramDef) -> dict[int, str]:
    """Slot -> helper name of every helper call in ``prog``."""
    from ebpf.code.isa import CallKind, Kind, slot_offsets
    from ebpf.kernel_enums import helper_name

    return {slot: helper_name(insn.imm)
            for insn, slot in zip(prog.insns, slot_offsets(prog.insns), strict=True)
            if insn.spec.kind is Kind.CALL and insn.src == CallKind.HELPER}


def _length(rng: random.Random) -> int:
    """Frame lengths: the shortest legal ones, small, large, up to the linear part's end,
    and longer (fragments)."""
    kind = rng.random()
    if kind < 0.08:
        return rng.randrange(14, 38)
    if kind < 0.5:
        return rng.randrange(38, 130)
    if kind < 0.75:
        return rng.randrange(130, 1600)
    if kind < 0.9:
        return rng.choice([MAX_LINEAR, MAX_LINEAR - 1, rng.randrange(3400, MAX_LINEAR)])
    return rng.randrange(MAX_LINEAR + 1, 9001)


def _offset(rng: random.Random, op: str, length: int) -> int:
    """A helper offset around the limits the kernel checks (the frame's state may already
    have moved in an earlier round: errors come out either way)."""
    linear = min(length, MAX_LINEAR)
    room = 4095 - (length - MAX_LINEAR - 1) % 4096  # left in the last fragment's page
    edges = {
        "xdp_adjust_head": [-216, -217, -256, linear - 14, linear - 13, -4, 4, 14],
        "xdp_adjust_tail": [14 - linear, 13 - linear, MAX_LINEAR - linear,
                            MAX_LINEAR - linear + 1, -4, 4, 100, -(length - 14), room,
                            room + 1],
        "xdp_adjust_meta": [-4, -8, -32, -252, -256, -3, -1, 4, 0, -216],
    }.get(op, [0, 1, 14, linear - 8, linear, linear + 1, 0xFFFF, 0x10000])
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(edges)
    if roll < 0.95:
        return rng.randrange(-300, 300)
    return rng.choice([0x7FFFFFFF, -0x80000000, 1 << 20, -(1 << 20)])


def _adjust_packets(rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        length = _length(rng)
        control = b""
        for _k in range(3):
            op = rng.randrange(len(OPS))
            word = op | rng.randrange(64) << 8 | (0x4000 if rng.random() < 0.05 else 0)
            control += word.to_bytes(4, "little") + (
                _offset(rng, OPS[op], length) & 0xFFFFFFFF).to_bytes(4, "little")
        data = bytearray(rng.randbytes(length))
        data[14:38] = control[:max(0, min(24, length - 14))]
        out.append(bytes(data[:length]))
    return out


def _callbacks(length: int, helper_calls: list) -> list[int]:
    """The slots of the calls (of ``WATCHED`` helpers, from a VM trace) that must leave the
    native code: helpers of other families, and on a frame with fragments, every call that
    reaches them once the VM has a view of the packet (after its first callback), before
    that load / store_bytes while fragments remain (native code keeps only their lengths)."""
    frags = max(0, length - MAX_LINEAR)
    jumbo, view, out = frags > 0, False, []
    for h in helper_calls:
        if h.name not in WATCHED:
            continue
        if h.name not in PACKET_HELPERS or jumbo and h.name in FRAG_BOUND and (
                view or frags and h.name in ("xdp_load_bytes", "xdp_store_bytes")):
            out.append(h.slot)
            view = True
        if h.name == "xdp_adjust_tail" and h.ret == 0 and frags:
            off = s32(h.args[1])
            frags = max(0, frags + off) if off < 0 else frags + off
    return out


def _spied(monkeypatch) -> list[tuple[int, int]]:
    """(slot, chunk packet index) of every call from native code back into the VM."""
    calls: list[tuple[int, int]] = []
    orig = CompiledVm._interp

    def spy(self, slot):
        calls.append((slot, self._rt[cg.RT_CUR]))
        return orig(self, slot)

    monkeypatch.setattr(CompiledVm, "_interp", spy)
    return calls


def _compare(ref: Vm, fast: CompiledVm, prog: ProgramDef, packets: list[bytes],
             calls: list[tuple[int, int]]) -> Counter:
    """Run ``packets`` in one batch on ``fast`` and one by one on ``ref``; every packet's
    verdict, output and metadata length equal; the packet helpers called back exactly
    where fragments make the VM's view necessary. Returns (helper, result) counts."""
    slots = {s for s, name in _helper_slots(prog).items() if name in WATCHED}
    cols = fast.run_xdp_columns(packets)
    seen: Counter = Counter()
    expected: Counter = Counter()
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), cols.packet_out(i), int(cols.meta_len[i])) == \
            (r.verdict, r.packet_out, r.meta_len), f"packet {i} ({len(p)} bytes)"
        for h in r.trace.helper_calls:
            seen[h.name, h.ret] += 1
        for slot in _callbacks(len(p), r.trace.helper_calls):
            expected[slot, i] += 1
    called_back = Counter((slot, i) for slot, i in calls if slot in slots)
    assert called_back == expected
    return seen


@pytest.mark.parametrize("seed", [1, 2])
def test_adjustments_equal_the_vm(seed, monkeypatch):
    """4,000 frames (14 bytes to jumbo) in one batch, three adjust / length / load / store
    calls each at and around every limit the kernel checks: each frame's verdict, bytes and
    metadata length are the VM's one by one (results, metadata moved with the head, the
    grown tail zeroed, the old data pointer read where the new window allows), every error
    return happens, and only the calls the fragments need (and the one that always calls
    back) left the native code."""
    rng = random.Random(seed)
    prog = _prog(ADJUST)
    calls = _spied(monkeypatch)
    ref, fast = Vm([], prog), CompiledVm([], prog)
    seen = _compare(ref, fast, prog, _adjust_packets(rng, 4000), calls)
    for name, results in (("xdp_adjust_head", {0, EINVAL}), ("xdp_adjust_tail", {0, EINVAL}),
                          ("xdp_adjust_meta", {0, EINVAL, EACCES}),
                          ("xdp_load_bytes", {0, EINVAL, EFAULT}),
                          ("xdp_store_bytes", {0, EINVAL, EFAULT})):
        assert {ret for (n, ret) in seen if n == name} >= results, name
    assert len({ret for (n, ret) in seen if n == "xdp_get_buff_len"}) > 100
    total = sum(c for (n, _), c in seen.items() if n in PACKET_HELPERS)
    packet_slots = {s for s, n in _helper_slots(prog).items() if n in PACKET_HELPERS}
    assert total > 7000 and sum(s in packet_slots for s, _ in calls) < total // 10


def test_metadata_limit_follows_the_environment(monkeypatch):
    """With ``metalen_max`` 32 (kernels before 6.3) the native adjust_meta refuses what
    the VM refuses (-EACCES above 32 bytes) and grants the rest."""
    rng = random.Random(7)
    prog = _prog(ADJUST)
    calls = _spied(monkeypatch)
    env = HelperEnv(metalen_max=32)
    ref, fast = Vm([], prog, env=HelperEnv(metalen_max=32)), CompiledVm([], prog, env=env)
    seen = _compare(ref, fast, prog, _adjust_packets(rng, 1500), calls)
    assert seen["xdp_adjust_meta", EACCES] and seen["xdp_adjust_meta", 0]


# bpf_csum_diff(from, from_size, to, to_size, seed) with 18 control bytes at packet offset
# 14: from offset (u16, from data), from size, to offset, to size, seed (u64), the kind of
# memory `to` is in (0 packet, 1 stack: a copy of the packet's first 64 bytes, 2 an array
# map's 64-byte value) and a flag for from = NULL; the result over the packet's first 8
# bytes. Frames shorter than 64 bytes pass untouched.
CSUM = """
mov %r6, %r1
ldxw %r7, [%r6+0]
ldxw %r3, [%r6+4]
mov %r4, %r7
add %r4, 64
jgt %r4, %r3, short
""" + "".join(f"ldxdw %r5, [%r7+{8 * i}]\nstxdw [%r10{-64 + 8 * i:+d}], %r5\n"
              for i in range(8)) + """
stw [%r10-72], 0
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -72
call 1
mov %r8, %r0
jne %r8, 0, found
mov %r0, 0
exit
found: ldxh %r1, [%r7+14]
add %r1, %r7
ldxb %r5, [%r7+31]
jset %r5, 1, null
ja from_set
null: mov %r1, 0
from_set: ldxh %r2, [%r7+16]
ldxh %r3, [%r7+18]
ldxb %r4, [%r7+30]
jeq %r4, 1, stack
jeq %r4, 2, value
add %r3, %r7
ja to_set
stack: add %r3, %r10
add %r3, -64
ja to_set
value: add %r3, %r8
to_set: ldxh %r4, [%r7+20]
ldxdw %r5, [%r7+22]
call 28
stxdw [%r7+0], %r0
mov %r0, 2
exit
short: mov %r0, 2
exit
"""
CSUM_SLOT = next(s for s, n in _helper_slots(_prog(CSUM)).items() if n == "csum_diff")
SIZES = [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 40, 60, 64, 100, 256, 300, 508, 512, 516]


def _csum_packets(rng: random.Random, n: int) -> list[bytes]:
    """Frames whose control asks for sizes and places that stay inside the memory named
    (the helper's own errors are what is under test, not memory faults)."""
    out = []
    for _ in range(n):
        length = rng.choice([rng.randrange(64, 200), rng.randrange(64, 1600),
                             rng.randrange(600, MAX_LINEAR + 1), rng.randrange(4000, 9001)])
        linear = min(length, MAX_LINEAR)
        kind = rng.choice([0, 1, 2])
        room = linear if kind == 0 else 64
        to_size = rng.choice([s for s in SIZES if s <= room] + [rng.randrange(room + 1)])
        to_off = rng.randrange(room - to_size + 1)
        from_size = rng.choice([s for s in SIZES if s <= linear] + [rng.randrange(linear)])
        from_off = rng.randrange(linear - from_size + 1)
        null = from_size == 0 and rng.random() < 0.5
        seed = rng.choice([0, 0xFFFFFFFF, 0xFFFF, rng.randrange(1 << 32),
                           rng.randrange(1 << 64)])
        data = bytearray(rng.randbytes(length))
        if rng.random() < 0.1:  # all-zero data: the sums' special case
            data[32:] = bytes(length - 32)
        out.append(_csum_packet(data, (from_off, from_size, to_off, to_size), seed, kind,
                                null))
    return out


def _csum_packet(data: bytearray, places: tuple[int, int, int, int], seed: int, kind: int,
                 null: bool = False) -> bytes:
    """``data`` with CSUM's control: (from offset, from size, to offset, to size), the
    seed, the kind of memory ``to`` is in, from = NULL."""
    control = b"".join(v.to_bytes(2, "little") for v in places)
    data[14:32] = control + seed.to_bytes(8, "little") + bytes([kind, int(null)])
    return bytes(data)


def _csum_vms(mode: str) -> tuple[ProgramDef, Vm, CompiledVm]:
    """CSUM on the VM and the compiled VM, in ``mode``, the array value the same."""
    prog = _prog(CSUM)
    defn = MapDef("v", MAP_TYPE_IDS["array"], 4, 64, 1)
    ref = Vm([defn], prog, env=HelperEnv(csum_diff=mode))
    fast = CompiledVm([defn], prog, env=HelperEnv(csum_diff=mode))
    value = random.Random(mode).randbytes(64)
    ref.maps[0].update(bytes(4), value)
    fast.maps[0].update(bytes(4), value)
    return prog, ref, fast


@pytest.mark.parametrize("mode", ["fold16", "x86_unfolded"])
def test_csum_diff_equals_the_vm(mode, monkeypatch):
    """4,000 frames in one batch, bpf_csum_diff over packet, stack and map-value memory
    with sizes 0 to 516 (multiples of 4 and not), NULL with size 0, 32- and 64-bit seeds,
    in both kernel modes: every result is the VM's (x86_unfolded's -EINVAL for sizes
    that are not multiples of 4 or exceed 512 bytes included) and none called back."""
    rng = random.Random(mode)
    calls = _spied(monkeypatch)
    prog, ref, fast = _csum_vms(mode)
    seen = _compare(ref, fast, prog, _csum_packets(rng, 4000), calls)
    results = Counter(ret for (name, ret), c in seen.items() if name == "csum_diff"
                      for _ in range(c))
    assert sum(results.values()) > 3500 and len(results) > 1000
    if mode == "x86_unfolded":
        assert results[EINVAL] > 300 and max(r for r in results if r != EINVAL) > 0xFFFF
    else:
        assert max(results) <= 0xFFFF
    assert not [c for c in calls if c[0] == CSUM_SLOT]


@pytest.mark.parametrize("mode", ["fold16", "x86_unfolded"])
def test_csum_diff_sums_that_fold_twice(mode, monkeypatch):
    """Sums whose 64-to-32-bit fold carries again (0xffffffff + 0xffffffff + 1), all-zero
    data with a zero seed (the only 0 of csum_partial), seeds alone: the VM's results."""
    calls = _spied(monkeypatch)
    prog, ref, fast = _csum_vms(mode)
    carry = b"\xff" * 8 + (1).to_bytes(4, "little")
    packets = []
    for seed in (0, 0xFFFFFFFF, 1, 0xFFFFFFFE):
        for from_data, to_data in ((b"\x07\0\0\0", carry), (b"", carry), (carry, b""),
                                   (carry, carry), (bytes(8), b"\x01\0\0\0"),
                                   (bytes(12), bytes(8)), (b"", b""), (bytes(8), b"")):
            data = bytearray(64 + len(from_data) + len(to_data))
            data[64:] = from_data + to_data
            places = (64, len(from_data), 64 + len(from_data), len(to_data))
            packets.append(_csum_packet(data, places, seed, 0))
    seen = _compare(ref, fast, prog, packets, calls)
    assert len({ret for (name, ret) in seen if name == "csum_diff"}) > 8
    assert not [c for c in calls if c[0] == CSUM_SLOT]


# csum_diff over the context (the VM refuses to read it), and a read through the old data
# pointer after adjust_head moved data past it: the VM's faults, from the batch.
FAULTS = {
    "ctx": """
mov %r6, %r1
mov %r2, 4
mov %r3, 0
mov %r4, 0
mov %r5, 0
call 28
mov %r0, 2
exit
""",
    "stale": """
mov %r6, %r1
ldxw %r9, [%r6+0]
mov %r1, %r6
mov %r2, 20
call 44
ldxb %r0, [%r9+0]
exit
""",
    "beyond": """
ldxw %r1, [%r1+0]
mov %r2, 5000
mov %r3, 0
mov %r4, 0
mov %r5, 0
call 28
exit
""",
}


@pytest.mark.parametrize("case", sorted(FAULTS))
def test_faults_are_the_vms(case):
    """Where the native helpers cannot or must not answer (memory the region table does
    not allow, a stale pointer outside the moved window), the batch raises the VM's
    error for that packet."""
    prog = _prog(FAULTS[case])
    packets = [bytes(range(60)), bytes(100)]
    with pytest.raises(VmError) as ref_err:
        Vm([], prog).run_xdp(packets[0])
    with pytest.raises(VmError) as fast_err:
        CompiledVm([], prog).run_xdp_columns(packets)
    assert str(fast_err.value) == f"packet 0: {ref_err.value}"


def test_helpers_answer_only_in_batches(monkeypatch):
    """``run`` (one packet, with its trace) keeps the packet helpers on the VM's handler:
    the trace lists them with their arguments and results, as the VM's does."""
    prog = _prog(ADJUST)
    calls = _spied(monkeypatch)
    packets = _adjust_packets(random.Random(3), 50)
    ref, fast = Vm([], prog), CompiledVm([], prog)
    fast.run_xdp_columns(packets[:10])  # a batch before: its state must not leak
    for p in packets:
        a, b = ref.run_xdp(p), fast.run_xdp(p)
        assert (a.verdict, a.packet_out, a.meta_len) == (b.verdict, b.packet_out, b.meta_len)
        assert [(h.name, h.args, h.ret) for h in a.trace.helper_calls] == \
            [(h.name, h.args, h.ret) for h in b.trace.helper_calls]
    slots = _helper_slots(prog)
    assert sum(1 for s, _ in calls if s in slots) > 40


@pytest.mark.parametrize("name", ["nat", "katran_lb", "adjust_tail"])
def test_corpus_programs_equal_the_vm(name, monkeypatch):
    """nat (csum_diff), katran_lb (adjust_head) and adjust_tail on 10,000 random packets
    with their scenarios, as one stream: the VM's verdicts, bytes, metadata, redirects and
    maps, and none of the packet helpers called back (adjust_tail on jumbo frames
    included: native code keeps their fragments' lengths)."""
    from ebpf.differential import Scenario
    from ebpf.executor import open_executor
    from ebpf.loader.elf import load
    from sim.packets import random_packets
    from tests.conftest import ROOT, corpus_object

    calls = _spied(monkeypatch)
    path = str(corpus_object(name))
    state = Scenario.load(ROOT / "examples" / "xdp" / "scenarios" / f"{name}.json")
    packets = random_packets(10_000, seed=11)
    times = [i * state.clock_step_ns for i in range(len(packets))]
    slots = {s for s, n in _helper_slots(load(path).programs[0]).items()
             if n in PACKET_HELPERS}
    helper_calls = expected = 0
    with open_executor("vm", path, load(path), None, state, seed=11) as ex:
        ref = []
        for p, t in zip(packets, times, strict=True):
            r = ex.run(p, t)
            ref.append((r.verdict, r.packet_out, r.meta_len, r.redirect))
            helper_calls += sum(h.name in PACKET_HELPERS for h in r.trace.helper_calls)
            expected += len(_callbacks(len(p), r.trace.helper_calls))
        ref_maps = ex.dump_maps()
    with open_executor("compiled", path, load(path), None, state, seed=11) as ex:
        got = [(r.verdict, r.packet_out, r.meta_len, r.redirect)
               for r in ex.iter_results(packets, times)]
        got_maps = ex.dump_maps()
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert a == b, f"packet {i}"
    assert got_maps == ref_maps
    assert helper_calls >= 50  # katran_lb: 68 encapsulations (VIP traffic is rare)
    assert sum(s in slots for s, _ in calls) == expected == 0
