"""Native redirects and FIB lookups in batches (``ebpf.compiled.forward``) against the
reference VM run one packet at a time: the same verdicts, output bytes and redirect targets
on every redirect map kind, flag and miss, every FIB outcome (v4 and v6), with the native
code answering the calls it models (counted with a spy on the callback)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.code.isa import Kind, slot_offsets
from ebpf.compiled import CompiledVm
from ebpf.helpers.core import (
    BPF_FIB_LOOKUP_DIRECT,
    BPF_FIB_LOOKUP_MARK,
    BPF_FIB_LOOKUP_OUTPUT,
    BPF_FIB_LOOKUP_SKIP_NEIGH,
    BPF_FIB_LOOKUP_SRC,
    BPF_FIB_LOOKUP_TBID,
    HelperEnv,
    Route,
)
from ebpf.kernel_enums import HELPER_IDS, MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm
from ebpf.vm.xdp import XDP_REDIRECT
from tests.ebpf.compiled.test_maplookup import _spied

REDIRECT, REDIRECT_MAP, FIB = (HELPER_IDS[n] for n in ("redirect", "redirect_map",
                                                       "fib_lookup"))
SMP_ID = HELPER_IDS["get_smp_processor_id"]


def _prog(text: str) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef("t", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("t", 0, p.num_slots, "xdp")]
    return p


def _call_slots(prog: ProgramDef, helper: int) -> set[int]:
    return {slot for insn, slot in zip(prog.insns, slot_offsets(prog.insns), strict=True)
            if insn.spec.kind is Kind.CALL and insn.imm == helper}


# --------------------------------------------------------------------------------------------
# redirects
# --------------------------------------------------------------------------------------------

def _op(tag: str, sel: int, arg: int, flags: int, out: int) -> str:
    """Packet byte ``sel`` chooses: 1 bpf_redirect(u32 at ``arg`` with bits above 32 set,
    u64 flags at ``flags``), 2 / 3 bpf_redirect_map(map 0 (the key with bits above 32
    set) / map 1, same), 4 get_smp_processor_id (a callback),
    else nothing (r0 = XDP_PASS); r0's low byte goes to packet byte ``out``."""
    return f"""
ldxb %r1, [%r6+{sel}]
ldxw %r2, [%r6+{arg}]
ldxdw %r3, [%r6+{flags}]
mov %r0, 2
jeq %r1, 1, {tag}_redirect
jeq %r1, 2, {tag}_map0
jeq %r1, 3, {tag}_map1
jeq %r1, 4, {tag}_smp
ja {tag}_done
{tag}_redirect:
lddw %r1, 0x500000000
or %r1, %r2
mov %r2, %r3
call {REDIRECT}
ja {tag}_done
{tag}_map0:
lddw %r1, 0x700000000
or %r2, %r1
lddw %r1, map_idx 0
call {REDIRECT_MAP}
ja {tag}_done
{tag}_map1:
lddw %r1, map_idx 1
call {REDIRECT_MAP}
ja {tag}_done
{tag}_smp:
call {SMP_ID}
{tag}_done:
stxb [%r6+{out}], %r0
"""


# two operations from packet bytes 14 and 15 (arguments at 16 / 20, flags at 24 / 32);
# byte 40's low bit: return the last helper's r0, else XDP_REDIRECT whatever it said;
# a packet shorter than 48 bytes: bpf_redirect(its length, 0), r0 returned
REDIRECTS = f"""
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r6, %r2
mov %r4, %r2
add %r4, 48
jgt %r4, %r3, short
{_op("a", 14, 16, 24, 4)}
{_op("b", 15, 20, 32, 5)}
ldxb %r7, [%r6+40]
jset %r7, 1, done
mov %r0, {XDP_REDIRECT}
done:
exit
short:
mov %r1, %r3
sub %r1, %r2
mov %r2, 0
call {REDIRECT}
exit
"""

FLAGS = [0, 0, 0, 0, 1, 2, 3, 4, 8, 8 | 2, 16, 16 | 1, 24, 32, 0x80, 1 << 32, 1 << 63]
"""redirect flags: actions (low 2 bits), BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS, invalid."""


def _redirect_maps(kind: str) -> list[MapDef]:
    return [MapDef("m0", MAP_TYPE_IDS[kind], 4, 4, 64),
            MapDef("m1", MAP_TYPE_IDS["devmap_hash"], 4, 4, 16)]


def _fill_redirect(vm: Vm, kind: str) -> None:
    """Slots 0-11 of map 0 and ten keys of map 1 set (some keys above max_entries)."""
    m0, m1 = vm.maps
    for k in range(12):
        if kind == "cpumap":
            value = 192 + k  # qsize
        elif kind == "xskmap":
            value = k % 4  # the socket's queue
        else:
            value = 100 + k  # ifindex
        assert m0.update(k.to_bytes(4, "little"), value.to_bytes(4, "little")) == 0
    for k in (3, 7, 1000, 65536, 0xFFFFFFFF, 5, 6, 9, 10, 11):
        assert m1.update(k.to_bytes(4, "little"), (200 + k % 50).to_bytes(4, "little")) == 0


def _redirect_packets(rng: random.Random, n: int) -> list[bytes]:
    keys = [0, 1, 2, 3, 5, 7, 11, 12, 40, 63, 64, 1000, 65536, 0xFFFFFFFF]
    out = []
    for _ in range(n):
        if rng.random() < 0.04:  # short: the one-redirect path
            out.append(rng.randbytes(rng.randrange(14, 48)))
            continue
        ops = [rng.choice([0, 1, 2, 2, 3, 3, 4]) for _ in range(2)]
        args = [rng.choice(keys) if rng.random() < 0.9 else rng.getrandbits(32)
                for _ in range(2)]
        flags = [rng.choice(FLAGS) for _ in range(2)]
        body = (bytes(ops) + b"".join(a.to_bytes(4, "little") for a in args)
                + b"".join(f.to_bytes(8, "little") for f in flags)
                + bytes([rng.randrange(256)]))
        out.append(rng.randbytes(14) + body + rng.randbytes(rng.choice([7, 20, 200])))
    return out


def _broadcasts(p: bytes, kind: str) -> int:
    """A packet's bpf_redirect_map calls with BPF_F_BROADCAST and valid flags (devmaps
    only: map 1, and map 0 of a devmap kind): the VM's handler answers them."""
    if len(p) < 48:
        return 0
    n = 0
    for op, flags in ((p[14], int.from_bytes(p[24:32], "little")),
                      (p[15], int.from_bytes(p[32:40], "little"))):
        devmap = op == 3 or (op == 2 and kind.startswith("devmap"))
        n += bool(devmap and flags & 8 and not flags & ~0x1B)
    return n


@pytest.mark.parametrize("kind", ["devmap", "devmap_hash", "cpumap", "xskmap"])
def test_native_redirects_equal_the_vm(kind, monkeypatch):
    """bpf_redirect and bpf_redirect_map (this map kind and a devmap_hash), two calls per
    packet with every flag (actions, broadcast, exclude-ingress, invalid bits), hits and
    misses (the previous target index carried across packets), callbacks (broadcasts, an smp
    id) before and after: 4,000 packets in one batch give the VM's verdict, bytes (the
    helpers' results) and redirect target on every packet, and only the broadcasts went
    to the VM's handler."""
    prog = _prog(REDIRECTS)
    calls = _spied(monkeypatch)  # (before the VM: it binds the callback)
    env = HelperEnv(num_cpus=12)  # (a cpumap slot needs its CPU)
    ref = Vm(_redirect_maps(kind), prog, env=env)
    fast = CompiledVm(_redirect_maps(kind), prog, env=env)
    _fill_redirect(ref, kind)
    _fill_redirect(fast, kind)
    packets = _redirect_packets(random.Random(kind), 4000)
    cols = fast.run_xdp_columns(packets)
    targets, total = set(), 0
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        got = (int(cols.verdict[i]), cols.packet_out(i), cols.redirect.get(i))
        assert got == (r.verdict, r.packet_out, r.redirect), i
        total += sum(h.name in ("redirect", "redirect_map") for h in r.trace.helper_calls)
        if r.redirect is not None:
            targets.add((r.redirect.kind, r.redirect.map))
    assert fast.redirect_index == ref.redirect_index
    assert {("ifindex", None), ("map", "m0"), ("map", "m1")} <= targets
    if kind.startswith("devmap"):
        assert ("broadcast", "m0") in targets
    results = {cols.packet_out(i)[4] for i in range(len(packets)) if len(packets[i]) >= 48}
    assert {0, 1, 2, 3, 4} <= results  # aborted, each miss action, redirected
    slots = _call_slots(prog, REDIRECT) | _call_slots(prog, REDIRECT_MAP)
    on_vm = sum(1 for s in calls if s in slots)
    assert on_vm == sum(_broadcasts(p, kind) for p in packets)
    assert on_vm < total // 3


def test_redirects_outside_batches_stay_on_the_vm(monkeypatch):
    """``run_xdp`` one packet at a time: every redirect call goes through the VM's handler
    (so the trace has it), and the target index it leaves is the one batches go on from."""
    prog = _prog(REDIRECTS)
    calls = _spied(monkeypatch)
    ref, fast = Vm(_redirect_maps("devmap"), prog), CompiledVm(_redirect_maps("devmap"), prog)
    _fill_redirect(ref, "devmap")
    _fill_redirect(fast, "devmap")
    packets = _redirect_packets(random.Random(5), 300)
    expected = 0
    for p in packets[:150]:
        r, got = ref.run_xdp(p), fast.run_xdp(p)
        assert (got.verdict, got.packet_out, got.redirect) == (r.verdict, r.packet_out,
                                                               r.redirect)
        names = [h.name for h in r.trace.helper_calls]
        assert [h.name for h in got.trace.helper_calls] == names
        expected += sum(n in ("redirect", "redirect_map") for n in names)
    slots = _call_slots(prog, REDIRECT) | _call_slots(prog, REDIRECT_MAP)
    assert sum(1 for s in calls if s in slots) == expected > 100
    assert fast.redirect_index == ref.redirect_index
    cols = fast.run_xdp_columns(packets[150:])
    for i, p in enumerate(packets[150:]):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), cols.packet_out(i), cols.redirect.get(i)) == \
            (r.verdict, r.packet_out, r.redirect), i


TAIL_ENTRY = f"""
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r6, %r1
mov %r7, %r2
mov %r4, %r2
add %r4, 24
jgt %r4, %r3, short
ldxw %r1, [%r7+14]
mov %r2, 0
call {REDIRECT}
mov %r1, %r6
lddw %r2, map_idx 0
ldxb %r3, [%r7+18]
and %r3, 1
call 12
mov %r0, {XDP_REDIRECT}
exit
short:
mov %r0, 1
exit
"""
# the tail-called program: packet byte 19's low bit: bpf_redirect_map(map 1, u32 at 20)
TAIL_TARGET = f"""
ldxw %r6, [%r1+0]
ldxb %r3, [%r6+19]
mov %r0, {XDP_REDIRECT}
jset %r3, 1, again
exit
again:
lddw %r1, map_idx 1
ldxw %r2, [%r6+20]
mov %r3, 0
call {REDIRECT_MAP}
exit
"""


def test_redirects_across_tail_calls():
    """A native redirect, then a tail call (on the VM's handler) into a program that may
    redirect again, natively: each packet's target is the VM's, the newest of the two."""
    maps = [MapDef("jmp", MAP_TYPE_IDS["prog_array"], 4, 4, 2, values={0: "b"}),
            MapDef("dev", MAP_TYPE_IDS["devmap"], 4, 4, 8)]
    progs = {"b": _prog(TAIL_TARGET)}
    ref = Vm(maps, _prog(TAIL_ENTRY), resolver=progs.__getitem__)
    fast = CompiledVm(maps, _prog(TAIL_ENTRY), resolver=progs.__getitem__)
    for vm in (ref, fast):
        for k in (1, 2, 5):
            vm.maps[1].update(k.to_bytes(4, "little"), (30 + k).to_bytes(4, "little"))
    rng = random.Random(3)
    packets = [rng.randbytes(14) + rng.getrandbits(32).to_bytes(4, "little")
               + bytes([rng.randrange(4), rng.randrange(4)])
               + rng.randrange(8).to_bytes(4, "little") + rng.randbytes(10)
               for _ in range(400)]
    cols = fast.run_xdp_columns(packets)
    kinds = set()
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), cols.packet_out(i), cols.redirect.get(i)) == \
            (r.verdict, r.packet_out, r.redirect), i
        kinds.add(r.redirect.kind if r.redirect is not None else None)
    assert {"ifindex", "map"} <= kinds


# --------------------------------------------------------------------------------------------
# FIB lookups
# --------------------------------------------------------------------------------------------

def _copy(src: str, src_off: int, dst: str, dst_off: int) -> str:
    return "".join(f"ldxdw %r5, [{src}{src_off + 8 * k:+d}]\nstxdw [{dst}{dst_off + 8 * k:+d}], "
                   f"%r5\n" for k in range(8))


# struct bpf_fib_lookup from packet bytes 14..78 (onto the stack, or in place when byte 94's
# low bit is set), plen and flags from the u64s at 78 and 86; the result into packet bytes
# 0..8 and the struct as the helper left it back into 14..78; XDP_TX
FIB_PROG = f"""
mov %r9, %r1
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r6, %r2
mov %r4, %r2
add %r4, 96
jgt %r4, %r3, short
{_copy("%r6", 14, "%r10", -64)}
ldxdw %r3, [%r6+78]
ldxdw %r4, [%r6+86]
ldxb %r7, [%r6+94]
mov %r1, %r9
mov %r2, %r10
add %r2, -64
jset %r7, 1, in_packet
ja call
in_packet:
mov %r2, %r6
add %r2, 14
call:
call {FIB}
stxdw [%r6+0], %r0
jset %r7, 1, out
{_copy("%r10", -64, "%r6", 14)}
out:
mov %r0, 3
exit
short:
mov %r0, 1
exit
"""

MAC = bytes.fromhex("020000000a01")
ROUTES = [
    Route("10.0.0.0/8", 2, bytes.fromhex("0200000000f2"), MAC, "10.255.0.1", metric=5,
          src="10.0.0.254"),
    Route("10.1.0.0/16", 3, dmac=None),
    Route("10.1.2.0/24", 4, MAC, MAC, "10.1.2.254", mtu=100),
    Route("10.1.2.3/32", 0, kind="blackhole"),
    Route("10.1.2.4/32", 0, kind="unreachable"),
    Route("10.1.2.5/32", 0, kind="prohibit"),
    Route("10.1.2.6/32", 0, kind="throw"),
    Route("10.1.2.7/32", 0, kind="local"),  # a kind the helper does not know: NOT_FWDED
    Route("10.1.3.0/24", 5, MAC, MAC),
    Route("10.1.3.0/24", 6, MAC, MAC),  # the same prefix again: the first one wins
    Route("172.16.0.0/12", 7, MAC, MAC, mtu=0, metric=(1 << 32) + 4),
    Route("192.168.0.0/16", (1 << 33) | 8, MAC, MAC, metric=-1),
    Route("198.51.100.0/24", 9, MAC, MAC, "2001:db8::1", src="2001:db8::99"),
    Route("::/0", 10, bytes(range(8)), b"\x07\x08\x09", "fe80::1"),
    Route("2001:db8::/32", 11, MAC, MAC, src="2001:db8::5"),
    Route("2001:db8:1::/48", 12, dmac=None),
    Route("2001:db8:1:2::/64", 13, MAC, MAC, mtu=1280),
    Route("2001:db8:1:2::1/128", 0, kind="blackhole"),
    Route("fd00::/8", 14, MAC, MAC, "10.0.0.1"),
]
DST4 = ["10.0.0.1", "10.200.1.1", "10.1.0.9", "10.1.2.9", "10.1.2.3", "10.1.2.4", "10.1.2.5",
        "10.1.2.6", "10.1.2.7", "10.1.3.1", "172.20.1.1", "192.168.5.5", "198.51.100.7",
        "8.8.8.8", "11.0.0.1"]
DST6 = ["2001:db8::1", "2001:db8:ff::1", "2001:db8:1::5", "2001:db8:1:2::1", "2001:db8:1:2::2",
        "fd00::1", "3000::1", "ff02::1", "fe80::5", "febf::1", "fec0::1", "::1",
        "::ffff:10.0.0.1", "::ffff:127.0.0.1"]
SRC6 = ["2001:db8::2", "2001:db8::3", "3000::2", "fe80::1", "ff02::2", "::1", "::",
        "::ffff:127.0.0.1"]
FIB_FLAGS = [0, 0, 0, 0, BPF_FIB_LOOKUP_SKIP_NEIGH, BPF_FIB_LOOKUP_SRC,
             BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH, BPF_FIB_LOOKUP_DIRECT,
             BPF_FIB_LOOKUP_OUTPUT, BPF_FIB_LOOKUP_TBID, BPF_FIB_LOOKUP_MARK, 0x3F, 0x40, 1 << 32]


def _addr(rng: random.Random, pool: list[str], size: int) -> bytes:
    if rng.random() < 0.85:
        return ipaddress.ip_address(rng.choice(pool)).packed
    return rng.randbytes(size)


def _fib_packets(rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        if rng.random() < 0.03:
            out.append(rng.randbytes(rng.randrange(14, 96)))  # short: dropped
            continue
        params = bytearray(rng.randbytes(64))
        params[0] = rng.choice([2, 2, 2, 2, 10, 10, 10, 10, 0, 7])
        params[6:8] = rng.choice([0, 60, 99, 100, 101, 1280, 1281, 1500, 1501, 9000, 65535]
                                 ).to_bytes(2, "little")
        if params[0] == 10:
            params[16:32] = _addr(rng, SRC6, 16)
            params[32:48] = _addr(rng, DST6, 16)
        else:
            params[32:36] = _addr(rng, DST4, 4)
        plen = rng.choice([64, 64, 64, 64, 64, 64, 63, 65, 0, (1 << 32) + 64])
        tail = (plen.to_bytes(8, "little") + rng.choice(FIB_FLAGS).to_bytes(8, "little")
                + bytes([rng.randrange(256)]))
        out.append(rng.randbytes(14) + bytes(params) + tail + rng.randbytes(rng.choice([1, 30])))
    return out


def _mapped(p: bytes) -> bool:
    """An IPv6 lookup the native code leaves to the VM (an IPv4-mapped address)."""
    if len(p) < 96 or p[14] != 10:
        return False
    plen, flags = int.from_bytes(p[78:86], "little"), int.from_bytes(p[86:94], "little")
    if plen < 64 or flags & ~0x3F:
        return False
    return any(ipaddress.IPv6Address(p[at:at + 16]).ipv4_mapped is not None
               for at in (30, 46))


def _fib_vms(monkeypatch, routes: list[Route], forwarding: bool = True):
    calls = _spied(monkeypatch)
    prog = _prog(FIB_PROG)
    env = HelperEnv(routes=routes, forwarding=forwarding)
    return calls, prog, Vm([], prog, env=env), CompiledVm([], prog, env=env)


def _same(ref: Vm, cols, packets: list[bytes]) -> set[int]:
    """Each packet's verdict and bytes are the VM's; the helper's results seen."""
    results = set()
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), cols.packet_out(i)) == (r.verdict, r.packet_out), i
        if r.verdict == 3:
            results.add(int.from_bytes(r.packet_out[:8], "little", signed=True))
    return results


def test_native_fib_lookups_equal_the_vm(monkeypatch):
    """bpf_fib_lookup on 6,000 packets in one batch (IPv4 and IPv6, longest prefix, ties,
    every route kind, MTU checks, gateways and sources of either family, every flag, bad
    sizes, flags and families, the struct on the stack or in the packet): every packet's
    verdict, result and struct bytes are the VM's, and only the lookups of IPv4-mapped
    IPv6 addresses called back."""
    calls, prog, ref, fast = _fib_vms(monkeypatch, ROUTES)
    packets = _fib_packets(random.Random(7), 6000)
    results = _same(ref, fast.run_xdp_columns(packets), packets)
    assert set(range(10)) - {5, 6} <= results  # all but FWD_DISABLED, UNSUPP_LWT (never)
    assert {-22, -97} <= results  # bad size / flags, unknown family
    assert sum(1 for s in calls if s in _call_slots(prog, FIB)) == \
        sum(map(_mapped, packets)) > 0


def test_fib_forwarding_off_and_routes_the_vm_refuses(monkeypatch):
    """Forwarding off: FWD_DISABLED natively, as the VM. A route the native table cannot
    hold (an MTU that is not a number) sends every lookup to the VM's handler, which
    answers as before while that route is not the one found."""
    calls, prog, ref, fast = _fib_vms(monkeypatch, ROUTES, forwarding=False)
    packets = _fib_packets(random.Random(8), 1500)
    assert 5 in _same(ref, fast.run_xdp_columns(packets), packets)
    assert sum(1 for s in calls if s in _call_slots(prog, FIB)) == sum(map(_mapped, packets))
    odd = [*ROUTES, Route("10.9.9.9/32", 2, MAC, MAC, mtu="1500")]  # type: ignore[arg-type]
    calls, prog, ref, fast = _fib_vms(monkeypatch, odd)
    cols = fast.run_xdp_columns(packets)
    assert 0 in _same(ref, cols, packets)
    lookups = sum(1 for p in packets if len(p) >= 96)
    assert sum(1 for s in calls if s in _call_slots(prog, FIB)) == lookups


def test_fib_parameters_out_of_bounds_raise_the_vms_error():
    """A struct pointer whose 64 bytes leave the stack: the native lookup does not read it,
    the VM's handler raises its own error, named with the packet's index."""
    text = FIB_PROG.replace("add %r2, -64\njset", "add %r2, -32\njset")
    prog = _prog(text)
    env = HelperEnv(routes=ROUTES)
    packet = _fib_packets(random.Random(1), 40)
    packet = [p for p in packet if len(p) >= 96 and p[94] & 1 == 0][:1]
    with pytest.raises(Exception) as ref_err:
        Vm([], prog, env=env).run_xdp(packet[0])
    with pytest.raises(type(ref_err.value), match="packet 0: ") as err:
        CompiledVm([], prog, env=env).run_xdp_columns(packet)
    assert str(ref_err.value) in str(err.value)


# --------------------------------------------------------------------------------------------
# the corpus routers
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fib_router", "lpm_router"])
def test_routers_on_their_scenarios(name, monkeypatch):
    """fib_router (bpf_fib_lookup + bpf_redirect) and lpm_router (bpf_redirect_map into a
    devmap) with their scenario states on 12,000 packets (three chunks): the VM's verdict,
    bytes and redirect target on every packet, redirects of both kinds among them, and
    neither helper ever called back."""
    from ebpf.differential import Scenario, VmSide
    from ebpf.loader.elf import load
    from sim.packets import random_packets
    from tests.conftest import ROOT, corpus_object

    calls = _spied(monkeypatch)
    scenario = Scenario.load(ROOT / "examples" / "xdp" / "scenarios" / f"{name}.json")
    path = str(corpus_object(name))
    obj = load(path)
    ref = VmSide(obj, None, scenario).vm
    fast_side = VmSide(obj, None, scenario, vm_class=CompiledVm)
    fast = fast_side.vm
    assert isinstance(fast, CompiledVm) and not isinstance(ref, CompiledVm)
    packets = random_packets(12_000, seed=11)
    cols = fast.run_xdp_columns(packets)
    redirected = 0
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        got = (int(cols.verdict[i]), cols.packet_out(i), cols.redirect.get(i))
        assert got == (r.verdict, r.packet_out, r.redirect), i
        redirected += r.verdict == XDP_REDIRECT
    assert redirected > 1000
    helpers = set()
    for helper in (REDIRECT, REDIRECT_MAP, FIB):
        slots = _call_slots(fast.program, helper)
        if slots:
            helpers.add(helper)
            assert not any(s in slots for s in calls), helper
    assert helpers == ({FIB, REDIRECT} if name == "fib_router" else {REDIRECT_MAP})
