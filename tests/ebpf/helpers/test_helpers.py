"""Helpers: csum_diff bit-exact, maps, time, randomness, printk, outputs, fib_lookup."""

from __future__ import annotations

import errno
import ipaddress
import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpf.code.asm import assemble_insns
from ebpf.errors import VmError
from ebpf.helpers.core import HelperEnv, Route
from ebpf.helpers.packet import csum_diff, csum_partial
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm

PKT = bytes(range(64))
M32 = 0xFFFFFFFF


def prog(text: str) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef("h", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("h", 0, p.num_slots, "xdp")]
    return p


def put_stack(data: bytes, at: int) -> str:
    """Assembly storing ``data`` (padded to 8 bytes) at fp + at."""
    data = data + bytes(-len(data) % 8)
    out = []
    for i in range(0, len(data), 8):
        word = int.from_bytes(data[i:i + 8], "little")
        out.append(f"lddw %r1, {word}\nstxdw [%r10{at + i:+d}], %r1")
    return "\n".join(out)


def signed64(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


# --- independent ones'-complement references ------------------------------------------------

def sum16(data: bytes) -> int:
    """Plain sum of little-endian 16-bit words (odd last byte as the low byte)."""
    data = data + bytes(len(data) % 2)
    return sum(int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2))


def ones32(data: bytes, seed: int) -> int:
    """The unique 32-bit ones'-complement sum of LE u32 words: 0 only for all-zero input."""
    data = data + bytes(-len(data) % 4)
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    total = seed + sum(words)
    if total == 0:
        return 0
    r = total % M32
    return r if r else M32


def words(*values: int) -> bytes:
    return b"".join(v.to_bytes(8, "little") for v in values)


DEAD = 0xDEADBEEFDEADBEEF
BEEF = 0xBEEFDEADBEEFDEAD
ABAB = 0xABABABABABABABAB

# tools/testing/selftests/bpf/prog_tests/test_csum_diff.c (little-endian results)
SELFTEST_VECTORS = [
    (b"", words(DEAD), 0, 0x3B3B),
    (b"", words(DEAD, BEEF), 0x1234, 0x88AA),
    (b"", words(DEAD, BEEF)[:15], 0x1234, 0xCAA9),
    (words(DEAD), b"", 0, 0xC4C4),
    (words(DEAD, BEEF), b"", 0x1234, 0x9BBD),
    (words(DEAD, BEEF)[:15], b"", 0x1234, 0x59BE),
    (words(DEAD), words(ABAB), 0, 0x7373),
    (words(DEAD)[:7], words(ABAB)[:7], 0, 0xA673),
    (bytes(8), words(ABAB), 0, 0xAEAE),
    (words(DEAD), bytes(8), 0xFFFF, 0xC4C4),
    (b"", b"", 0, 0),
    (b"", b"", 0x1234, 0x1234),
    (bytes(512), b"", 0xFFFF, 0xFFFF),
]


@pytest.mark.parametrize("from_data,to_data,seed,expected", SELFTEST_VECTORS)
def test_csum_diff_kernel_selftest_vectors(from_data, to_data, seed, expected):
    """fold16 csum_diff matches the kernel selftest's expected values."""
    assert csum_diff(from_data, to_data, seed) == expected


@given(st.binary(max_size=64), st.binary(max_size=64), st.integers(0, M32))
def test_csum_diff_fold16_congruent(from_data, to_data, seed):
    """fold16 result = seed + sum(to) - sum(from) modulo 0xffff, in 16 bits."""
    result = csum_diff(from_data, to_data, seed)
    assert 0 <= result <= 0xFFFF
    assert result % 0xFFFF == (seed + sum16(to_data) - sum16(from_data)) % 0xFFFF


@given(st.binary(max_size=96), st.integers(0, M32))
def test_csum_partial_is_unique_ones_complement(data, seed):
    """x86 csum_partial equals the 32-bit ones'-complement sum computed on u32 words."""
    assert csum_partial(data, seed) == ones32(data, seed)


@given(st.binary(max_size=64).map(lambda b: b[:len(b) // 4 * 4]),
       st.binary(max_size=64).map(lambda b: b[:len(b) // 4 * 4]), st.integers(0, M32))
def test_csum_diff_x86_unfolded(from_data, to_data, seed):
    """Old x86 kernels: csum_partial over ~from ++ to, unfolded 32 bits."""
    inverted = bytes(b ^ 0xFF for b in from_data)
    assert csum_diff(from_data, to_data, seed, "x86_unfolded") == \
        ones32(inverted + to_data, seed)


def test_csum_diff_x86_unfolded_size_checks():
    """Old kernels refuse sizes that are not multiples of 4 or exceed 512 bytes."""
    assert csum_diff(b"abc", b"", 0, "x86_unfolded") == -errno.EINVAL
    assert csum_diff(bytes(256), bytes(260), 0, "x86_unfolded") == -errno.EINVAL


CSUM_PROG = put_stack(words(DEAD), -8) + """
mov %r1, 0
mov %r2, 0
mov %r3, %r10
add %r3, -8
mov %r4, 8
mov %r5, 0
call 28
exit
"""


def test_csum_diff_helper_fold16():
    """From a program: pushing deadbeefdeadbeef gives 0x3b3b (Linux 6.18 returns this)."""
    assert Vm([], prog(CSUM_PROG)).run().ret == 0x3B3B


def test_csum_diff_helper_x86_unfolded():
    """Old x86 kernels return 0xdeadbeef + 0xdeadbeef with end-around carry: 0xbd5b7ddf."""
    vm = Vm([], prog(CSUM_PROG), env=HelperEnv(csum_diff="x86_unfolded"))
    assert vm.run().ret == 0xBD5B7DDF


# --- maps -----------------------------------------------------------------------------------

HASH = MapDef("flows", MAP_TYPE_IDS["hash"], 4, 8, 16)

UPDATE_LOOKUP = """
stw [%r10-4], 5
lddw %r1, 0x1122334455667788
stxdw [%r10-16], %r1
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -4
mov %r3, %r10
add %r3, -16
mov %r4, FLAGS
call 2
mov %r6, %r0
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -4
call 1
jeq %r0, 0, miss
ldxdw %r0, [%r0+0]
exit
miss:
mov %r0, %r6
exit
"""


def test_map_update_then_lookup():
    """update(key 5) then lookup returns a pointer to the stored value."""
    vm = Vm([HASH], prog(UPDATE_LOOKUP.replace("FLAGS", "0")))
    t = vm.run()
    assert t.ret == 0x1122334455667788
    assert [(o.map, o.op, o.key, o.hit, o.write) for o in t.map_ops] == [
        ("flows", "update", (5).to_bytes(4, "little"), True, True),
        ("flows", "lookup", (5).to_bytes(4, "little"), True, False)]


def test_map_update_noexist_on_existing_key():
    """BPF_NOEXIST on an existing key returns -EEXIST (the lookup still finds the old value)."""
    vm = Vm([HASH], prog(UPDATE_LOOKUP.replace("FLAGS", "1")))
    vm.maps[0].update((5).to_bytes(4, "little"), bytes(8))
    t = vm.run()
    assert t.ret == 0
    assert t.helper_calls[0].ret == (-errno.EEXIST) & (2 ** 64 - 1)


def test_map_lookup_miss_returns_null():
    """A lookup of a missing key returns 0."""
    p = prog("stw [%r10-4], 9\nlddw %r1, map_idx 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\nexit")
    t = Vm([HASH], p).run()
    assert t.ret == 0 and t.map_ops[0].hit is False


def test_map_delete():
    """delete removes the entry; a second delete is -ENOENT."""
    p = prog("""
stw [%r10-4], 5
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -4
call 3
mov %r6, %r0
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -4
call 3
lsh %r6, 32
or %r0, %r6
exit
""")
    vm = Vm([HASH], p)
    vm.maps[0].update((5).to_bytes(4, "little"), bytes(8))
    assert vm.run().ret == (-errno.ENOENT) & (2 ** 64 - 1)  # first delete 0, second -ENOENT
    assert vm.maps[0].lookup((5).to_bytes(4, "little")) is None


def test_percpu_lookup_uses_configured_cpu():
    """A per-CPU array lookup on CPU 1 returns CPU 1's copy."""
    m = MapDef("pc", MAP_TYPE_IDS["percpu_array"], 4, 8, 1)
    p = prog("stw [%r10-4], 0\nlddw %r1, map_idx 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\n"
             "stdw [%r0+0], 77\nmov %r0, 0\nexit")
    vm = Vm([m], p, env=HelperEnv(cpu=1, num_cpus=2))
    vm.run()
    assert bytes(vm.maps[0].lookup(bytes(4), 1)) == (77).to_bytes(8, "little")
    assert bytes(vm.maps[0].lookup(bytes(4), 0)) == bytes(8)


def test_update_prog_array_from_program_refused():
    """Programs may not update a prog_array (the verifier says so)."""
    m = MapDef("jmp", MAP_TYPE_IDS["prog_array"], 4, 4, 2)
    p = prog("stw [%r10-4], 0\nlddw %r1, map_idx 0\nmov %r2, %r10\nadd %r2, -4\n"
             "mov %r3, %r2\nmov %r4, 0\ncall 2\nexit")
    with pytest.raises(VmError, match="insn 7.*not allowed from a program"):
        Vm([m], p).run()


def test_array_of_maps_lookup_gives_inner_map():
    """A lookup in an array of maps returns a map pointer usable for another lookup."""
    inner = MapDef("inner", MAP_TYPE_IDS["array"], 4, 4, 1)
    outer = MapDef("outer", MAP_TYPE_IDS["array_of_maps"], 4, 4, 1, inner=inner,
                   values={0: "inner"})
    p = prog("""
stw [%r10-4], 0
lddw %r1, map_idx 1
mov %r2, %r10
add %r2, -4
call 1
jeq %r0, 0, +6
mov %r1, %r0
mov %r2, %r10
add %r2, -4
call 1
jeq %r0, 0, +1
ldxw %r0, [%r0+0]
exit
""")
    vm = Vm([inner, outer], p)
    vm.maps[0].update(bytes(4), (1234).to_bytes(4, "little"))
    assert vm.run().ret == 1234


# --- time, randomness, cpu ------------------------------------------------------------------

def test_ktime_is_deterministic():
    """ktime_get_ns starts at clock_start_ns and advances clock_step_ns per call."""
    p = prog("call 5\nmov %r6, %r0\ncall 5\nsub %r0, %r6\nlsh %r6, 16\nor %r0, %r6\nexit")
    env = HelperEnv(clock_start_ns=1000, clock_step_ns=7)
    assert Vm([], p, env=env).run().ret == (1000 << 16) | 7


def test_boot_ns_adds_offset():
    """ktime_get_boot_ns is the clock plus boot_offset_ns."""
    env = HelperEnv(clock_start_ns=1000, boot_offset_ns=50)
    assert Vm([], prog("call 125\nexit"), env=env).run().ret == 1050


def test_jiffies64():
    """jiffies64 starts at jiffies_start and counts 1/hz s of clock time."""
    env = HelperEnv(clock_start_ns=0, clock_step_ns=8_000_000, hz=250, jiffies_start=100)
    p = prog("call 118\nmov %r6, %r0\ncall 118\nlsh %r6, 16\nor %r0, %r6\nexit")
    assert Vm([], p, env=env).run().ret == (100 << 16) | 102  # second read 8 ms later


def test_prandom_seeded():
    """get_prandom_u32 follows random.Random(seed)."""
    expected = random.Random(42)
    vm = Vm([], prog("call 7\nexit"), env=HelperEnv(seed=42))
    assert [vm.run().ret for _ in range(3)] == [expected.getrandbits(32) for _ in range(3)]


def test_smp_processor_id_and_numa_node():
    """get_smp_processor_id and get_numa_node_id come from the environment."""
    env = HelperEnv(cpu=3, num_cpus=4, numa_node=1)
    assert Vm([], prog("call 8\nlsh %r0, 8\nmov %r6, %r0\ncall 42\nor %r0, %r6\nexit"),
              env=env).run().ret == (3 << 8) | 1


# --- trace_printk ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,a,b,text", [
    (b"x=%d y=%x\n", -5, 255, "x=-5 y=ff\n"),
    (b"%5d|%-4u|", 42, 7, "   42|7   |"),
    (b"%lld %llx", -1, -1, "-1 ffffffffffffffff"),
    (b"%c%c", 65, 66, "AB"),
    (b"%08x", 0xABC, 0, "00000abc"),
    (b"%+d", 5, 0, "+5"),
])
def test_trace_printk_formats(fmt, a, b, text):
    """Formats as the kernel does (values checked on Linux 6.18) and returns the length."""
    fmt += b"\0"
    size = len(fmt) + (-len(fmt) % 8)
    src = put_stack(fmt, -size) + (f"\nmov %r1, %r10\nadd %r1, {-size}\nmov %r2, {len(fmt)}\n"
                                   f"mov %r3, {a}\nmov %r4, {b}\ncall 6\nexit")
    t = Vm([], prog(src)).run()
    assert t.printk == [text]
    assert t.ret == len(text)


def test_trace_printk_rejects_precision():
    """%.2d is not accepted by bpf_bprintf_prepare: -EINVAL."""
    fmt = b"%.2d\0"
    src = put_stack(fmt, -8) + "\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 5\ncall 6\nexit"
    assert signed64(Vm([], prog(src)).run().ret) == -errno.EINVAL


# --- perf events and ring buffers -----------------------------------------------------------

def test_perf_event_output_appends_packet_bytes():
    """flags = BPF_F_CURRENT_CPU | 4 << 32 appends 4 packet bytes to the sample."""
    m = MapDef("events", MAP_TYPE_IDS["perf_event_array"], 4, 4, 1)
    src = put_stack(b"EVENT!!!", -8) + """
mov %r2, 0
lddw %r2, map_idx 0
lddw %r3, 0x4ffffffff
mov %r4, %r10
add %r4, -8
mov %r5, 8
call 25
exit
"""
    vm = Vm([m], prog(src))
    res = vm.run_xdp(PKT)
    assert res.verdict == 0
    assert [(r.cpu, r.data) for r in vm.maps[0].records] == [(0, b"EVENT!!!" + PKT[:4])]


def test_ringbuf_output_and_reserve_submit():
    """ringbuf_output and reserve/submit both produce records in order."""
    m = MapDef("rb", MAP_TYPE_IDS["ringbuf"], 0, 0, 4096)
    src = put_stack(b"abcdefgh", -8) + """
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -8
mov %r3, 3
mov %r4, 0
call 130
lddw %r1, map_idx 0
mov %r2, 4
mov %r3, 0
call 131
jeq %r0, 0, +4
stw [%r0+0], 0x64636261
mov %r1, %r0
mov %r2, 0
call 132
exit
"""
    vm = Vm([m], prog(src))
    vm.run()
    assert [r.data for r in vm.maps[0].records] == [b"abc", b"abcd"]


# --- fib_lookup -----------------------------------------------------------------------------

FIB_PROG = """
mov %r6, %r1
PARAMS
mov %r1, %r6
mov %r2, %r10
add %r2, -64
mov %r3, 64
mov %r4, FLAGS
call 69
mov %r7, %r0
mov %r1, %r6
mov %r2, 0
mov %r3, %r10
add %r3, -64
mov %r4, 64
call 190
mov %r0, %r7
exit
"""


def fib(dst: str, routes: list, tot_len: int = 100, flags: int = 0, family: int = 2):
    params = bytearray(64)
    params[0] = family
    struct.pack_into("<H", params, 6, tot_len)
    struct.pack_into("<I", params, 8, 1)
    addr = ipaddress.ip_address(dst).packed
    params[32:32 + len(addr)] = addr
    src = FIB_PROG.replace("PARAMS", put_stack(bytes(params), -64)).replace("FLAGS", str(flags))
    res = Vm([], prog(src), env=HelperEnv(routes=routes)).run_xdp(bytes(100))
    return signed64(res.trace.ret), res.packet_out[:64]


ROUTES = [("10.0.0.0/8", 2, b"\x02" * 6, b"\xaa" * 6),
          ("10.1.0.0/16", 3, b"\x03" * 6, b"\xbb" * 6),
          Route("192.168.0.0/24", 4, b"\x04" * 6, None),
          Route("172.16.0.0/12", 5, b"\x05" * 6, b"\xcc" * 6, gateway="172.16.0.1", mtu=1400)]


def test_fib_lookup_longest_prefix_success():
    """10.1.2.3 takes the /16: ifindex 3 and its MACs, code SUCCESS."""
    ret, out = fib("10.1.2.3", ROUTES)
    assert ret == 0
    assert struct.unpack_from("<I", out, 8)[0] == 3
    assert out[52:58] == b"\x03" * 6 and out[58:64] == b"\xbb" * 6
    assert struct.unpack_from("<H", out, 6)[0] == 1500  # mtu_result


def test_fib_lookup_no_route_not_forwarded():
    """No matching prefix: BPF_FIB_LKUP_RET_NOT_FWDED (4)."""
    assert fib("8.8.8.8", ROUTES)[0] == 4


def test_fib_lookup_no_neighbour():
    """A route without a neighbour MAC: NO_NEIGH (7), ifindex still written."""
    ret, out = fib("192.168.0.9", ROUTES)
    assert ret == 7 and struct.unpack_from("<I", out, 8)[0] == 4


def test_fib_lookup_gateway_and_frag_needed():
    """A gateway route rewrites ipv4_dst; tot_len above the MTU gives FRAG_NEEDED (8)."""
    ret, out = fib("172.16.5.5", ROUTES)
    assert ret == 0 and out[32:36] == bytes([172, 16, 0, 1])
    ret, out = fib("172.16.5.5", ROUTES, tot_len=1500)
    assert ret == 8 and struct.unpack_from("<H", out, 6)[0] == 1400


def test_fib_lookup_bad_arguments():
    """Unknown flags are -EINVAL, an unknown family -EAFNOSUPPORT."""
    assert fib("10.0.0.1", ROUTES, flags=0x40)[0] == -errno.EINVAL
    assert fib("10.0.0.1", ROUTES, family=7)[0] == -errno.EAFNOSUPPORT
