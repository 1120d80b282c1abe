"""Native map updates and clock reads in batches (``ebpf.compiled.mapwrite``) against the
reference VM run packet by packet: the same results (every flag and error), the same map
contents (LRU maps: the same recency order), the same clock, and most calls answered
without calling back into the VM."""

from __future__ import annotations

import random

import pytest

from ebpf.compiled import CompiledVm
from ebpf.helpers.core import HelperEnv
from ebpf.kernel_enums import HELPER_IDS, MAP_TYPE_IDS
from ebpf.loader.program import MapDef
from ebpf.vm.machine import Vm
from tests.ebpf.compiled.test_maplookup import _head, _ordered, _prog, _spied

UPDATE_SLOT = 37
# lookup (a hit copies the value's first 4 bytes over the packet's); then packet byte 22's
# low bit set: delete the key; else update the key in packet bytes 24..32 (the looked-up
# one or another) to bytes 32..40 with flags = packet byte 23; the helper's result into
# packet byte 4.
UPDATER = _head(36) + """
jeq %r0, 0, +2
ldxw %r5, [%r0+0]
stxw [%r6+0], %r5
ldxb %r7, [%r6+22]
and %r7, 1
jeq %r7, 0, +7
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -8
call 3
stxb [%r6+4], %r0
ja +13
ldxdw %r5, [%r6+24]
stxdw [%r10-8], %r5
ldxdw %r5, [%r6+32]
stxdw [%r10-16], %r5
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -8
mov %r3, %r10
add %r3, -16
ldxb %r4, [%r6+23]
call 2
stxb [%r6+4], %r0
mov %r0, 2
exit
mov %r0, 0
exit
"""
FLAGS = [0, 0, 0, 2, 2, 1, 3, 4, 5, 6, 0x80]
"""ANY, EXIST, NOEXIST, then invalid ones: 3, BPF_F_LOCK alone and with NOEXIST / EXIST,
a high bit."""


def _stream(is_array: bool, rng: random.Random, n: int) -> tuple[list[bytes], list[bytes]]:
    """(keys filled in, packets): lookups and updates of those keys and of new ones (half
    the updates of another key than the one looked up), one delete in eight, every flag
    of FLAGS; runts mid-stream and at the end."""
    if is_array:  # indices 0..23 in a 16-entry array: E2BIG beyond
        filled = [i.to_bytes(4, "little") + rng.randbytes(4) for i in range(12)]
        pool = [rng.randrange(24).to_bytes(4, "little") + rng.randbytes(4) for _ in range(30)]
    else:
        filled = [rng.randbytes(8) for _ in range(40)]
        pool = filled + [rng.randbytes(8) for _ in range(24)]
    packets = []
    for _ in range(n):
        ctl = bytes([rng.choice([0, 0, 0, 2, 4, 6, 8, 1]), rng.choice(FLAGS)])
        key = rng.choice(pool)
        other = key if rng.random() < 0.5 else rng.choice(pool)
        packets.append(rng.randbytes(14) + key + ctl + other + rng.randbytes(
            rng.choice([8, 20])))
    packets[n // 2:n // 2] = [bytes(20)]  # a runt: one packet on its own, mid-stream
    packets.append(bytes(20))
    return filled, packets


@pytest.mark.parametrize("kind", ["array", "percpu_array", "hash", "percpu_hash",
                                  "lru_hash", "lru_percpu_hash"])
def test_updates_equal_the_vm(kind, monkeypatch):
    """Lookups, updates (every flag, existing and new keys, a full map) and deletes of a
    map, 3,000 packets in one batch: each packet's verdict and bytes (the helpers' results
    included), the map's entries in their order (LRU: recency, evictions) are the
    reference VM's one by one, and nine updates in ten are answered natively (insertions
    into a map with room included)."""
    rng = random.Random(kind)
    is_array = kind.endswith("array")
    defn = MapDef("m", MAP_TYPE_IDS[kind], 4 if is_array else 8, 8, 16 if is_array else 48)
    env = HelperEnv(num_cpus=2, cpu=1)
    calls = _spied(monkeypatch)
    ref = Vm([defn], _prog(UPDATER), env=env)
    fast = CompiledVm([defn], _prog(UPDATER), env=env)
    filled, packets = _stream(is_array, rng, 3000)
    for m in (ref.maps[0], fast.maps[0]):
        for key in filled:
            m.update(key[:defn.key_size], key[::-1])
    cols = fast.run_xdp_columns(packets)
    sizes, results = set(), []
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), cols.packet_out(i)) == (r.verdict, r.packet_out), i
        sizes.add(len(ref.maps[0]))
        if len(p) > 30 and not p[22] & 1:
            results.append(r.packet_out[4])
    assert _ordered(fast.maps[0]) == _ordered(ref.maps[0])
    errors = {0, 256 - 17, 256 - 22} | ({256 - 7} if is_array else {256 - 2})
    assert errors <= set(results)  # 0, EEXIST, EINVAL, E2BIG or ENOENT
    if kind in ("hash", "percpu_hash"):
        assert 256 - 7 in results and max(sizes) == 48  # a full hash map refuses
    if kind.startswith("lru"):
        assert max(sizes) == 48  # full: insertions evicted the least recently used
    on_vm = calls.count(UPDATE_SLOT)  # new keys too, while the map has room
    assert on_vm < len(results) // 10, (on_vm, len(results))


@pytest.mark.parametrize("kind", ["hash", "lru_hash"])
def test_updates_outside_batches_stay_in_the_trace(kind):
    """One packet at a time (``run_xdp``) every update runs on the VM's handler: the trace
    records each one, as the reference VM's does."""
    defn = MapDef("m", MAP_TYPE_IDS[kind], 8, 8, 48)
    ref, fast = Vm([defn], _prog(UPDATER)), CompiledVm([defn], _prog(UPDATER))
    rng = random.Random(3)
    filled, packets = _stream(False, rng, 40)
    for m in (ref.maps[0], fast.maps[0]):
        for key in filled:
            m.update(key, key[::-1])
    for p in packets:
        a, b = ref.run_xdp(p), fast.run_xdp(p)
        assert (a.verdict, a.packet_out) == (b.verdict, b.packet_out)
        assert a.trace.map_ops == b.trace.map_ops and a.trace.helper_calls == \
            b.trace.helper_calls


CLOCK_NAMES = ["ktime_get_ns", "ktime_get_boot_ns", "ktime_get_coarse_ns",
               "ktime_get_tai_ns", "jiffies64"]


def _clock_prog() -> str:
    """Every clock helper, read before the length check (runts read the clock too); a
    packet of 48 bytes or more gets the five readings over its first 40 bytes."""
    text = "mov %r6, %r1\n"
    for k, name in enumerate(CLOCK_NAMES):
        text += f"call {HELPER_IDS[name]}\nstxdw [%r10-{8 * (k + 1)}], %r0\n"
    text += """
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r4, %r2
add %r4, 48
jgt %r4, %r3, +12
"""
    for k in range(len(CLOCK_NAMES)):
        text += f"ldxdw %r5, [%r10-{8 * (k + 1)}]\nstxdw [%r2+{8 * k}], %r5\n"
    return text + "mov %r0, 2\nexit\nmov %r0, 1\nexit\n"


def test_clock_reads_equal_the_vm(monkeypatch):
    """ktime_get_ns / boot / coarse / tai and jiffies64, each packet of a 3,000-packet batch
    (runts mid-stream): every reading is the reference VM's one by one, then single runs
    continue the same clock with every read in the trace; only jiffies64 calls back."""
    env = HelperEnv(clock_start_ns=(1 << 64) - 5_000_000, clock_step_ns=333_333,
                    boot_offset_ns=12_345, tai_offset_ns=37_000_000_001)
    calls = _spied(monkeypatch)
    ref = Vm([], _prog(_clock_prog()), env=env)
    fast = CompiledVm([], _prog(_clock_prog()), env=env)
    rng = random.Random(5)
    packets = [rng.randbytes(rng.choice([48, 60, 200])) for _ in range(3000)]
    packets[1000:1000] = [bytes(14), bytes(20)]
    cols = fast.run_xdp_columns(packets)
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), cols.packet_out(i)) == (r.verdict, r.packet_out), i
    first = cols.packet_out(0)
    assert int.from_bytes(first[:8], "little") == (1 << 64) - 5_000_000  # wraps later
    jiffies_slot = 1 + 2 * CLOCK_NAMES.index("jiffies64")
    assert set(calls) == {jiffies_slot}  # the other four natively
    for p in packets[:3]:
        a, b = ref.run_xdp(p), fast.run_xdp(p)
        assert a.packet_out == b.packet_out
        assert a.trace.helper_calls == b.trace.helper_calls
        assert len(b.trace.helper_calls) == len(CLOCK_NAMES)
    assert fast.helper_state.reads == ref.helper_state.reads
