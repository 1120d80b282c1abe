"""Native map lookups in batches (``ebpf.compiled.maplookup``) against the Python maps:
the same answers on array, per-CPU array, hash and LPM maps, most of them without calling
back into the VM, also while the program updates and deletes entries."""

from __future__ import annotations

import random

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.compiled import CompiledVm, maplookup
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm


def _head(skip: int) -> str:
    """r0 = lookup(map 0, 8 key bytes at packet offset 14), the key at r10-8 and the packet
    in r6; a packet shorter than 30 bytes jumps ``skip`` instructions ahead (to abort)."""
    return f"""
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 30
jgt %r4, %r3, +{skip}
ldxdw %r5, [%r2+14]
stxdw [%r10-8], %r5
mov %r6, %r2
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -8
call 1
"""


LOOKUP_SLOT = 12
# a hit copies the value's first 4 bytes over the packet's first 4 and passes, a miss
# drops, a short packet aborts.
LOOKUP = _head(15) + """
jeq %r0, 0, +4
ldxw %r5, [%r0+0]
stxw [%r6+0], %r5
mov %r0, 2
exit
mov %r0, 1
exit
mov %r0, 0
exit
"""


def _prog(text: str) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef("t", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("t", 0, p.num_slots, "xdp")]
    return p


def _fill(m, kind: str, rng: random.Random) -> list[bytes]:
    """Entries into map ``m``; returns keys worth looking up (hits and near misses)."""
    keys = []
    for i in range(40):
        if kind in ("array", "percpu_array"):
            key = (i % 24).to_bytes(4, "little") + rng.randbytes(4)
            m.update(key[:4], rng.randbytes(8))
        elif kind == "hash":
            key = rng.randbytes(8)
            m.update(key, rng.randbytes(8))
        else:
            plen = rng.choice([0, 1, 7, 8, 9, 16, 23, 24, 31, 32, rng.randrange(33)])
            key = plen.to_bytes(4, "little") + rng.randbytes(4)
            m.update(key, rng.randbytes(8))
        keys.append(key)
    return keys


def _packets(kind: str, keys: list[bytes], rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        if rng.random() < 0.6:
            key = bytearray(rng.choice(keys))
            if kind == "lpm_trie":  # longer lookups into the same prefixes, some > 32 bits
                key[:4] = rng.choice([32, 32, 24, 40, int.from_bytes(key[:4], "little")]
                                     ).to_bytes(4, "little")
                key[4 + rng.randrange(4)] ^= 1 << rng.randrange(8)
            key = bytes(key)
        else:
            key = rng.randbytes(8)
        out.append(rng.randbytes(14) + key + rng.randbytes(rng.choice([8, 20, 100])))
    out.append(bytes(20))  # too short for the key: aborted
    return out


@pytest.mark.parametrize("kind", ["array", "percpu_array", "hash", "lpm_trie"])
def test_native_lookups_equal_the_vm(kind, monkeypatch):
    """A lookup-only program on 3,000 packets in one batch gives each packet the verdict
    and bytes the reference VM gives it one by one, and the native code answered all but
    the first lookup of each value (the VM hands out the value's address)."""
    rng = random.Random(kind)
    defn = MapDef("m", MAP_TYPE_IDS[kind], 8 if kind in ("hash", "lpm_trie") else 4, 8,
                  16 if kind.endswith("array") else 64, flags=1 if kind == "lpm_trie" else 0)
    calls = _spied(monkeypatch)
    ref, fast = Vm([defn], _prog(LOOKUP)), CompiledVm([defn], _prog(LOOKUP))
    keys = _fill(ref.maps[0], kind, random.Random(1))
    assert _fill(fast.maps[0], kind, random.Random(1)) == keys
    packets = _packets(kind, keys, rng, 3000)
    cols = fast.run_xdp_columns(packets)
    verdicts = []
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        verdicts.append(r.verdict)
        assert (int(cols.verdict[i]), cols.packet_out(i)) == (r.verdict, r.packet_out), i
    assert verdicts.count(2) > 300 and verdicts.count(1) > 300  # hits and misses both
    distinct_hits = len({p[14:22] if kind != "array" and kind != "percpu_array" else p[14:18]
                         for p, v in zip(packets, verdicts, strict=True) if v == 2})
    assert len(calls) <= distinct_hits  # each value's first lookup at most


# after the lookup: a hit copies the value's first 4 bytes over the packet's; then packet
# byte 22's low bit: delete the key, else update it to packet bytes 22..30 with flags =
# byte 23 & 3 (ANY, NOEXIST, EXIST, invalid); the helper's result into packet byte 4.
WRITER = _head(35) + """
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
ja +12
ldxdw %r5, [%r6+22]
stxdw [%r10-16], %r5
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -8
mov %r3, %r10
add %r3, -16
ldxb %r4, [%r6+23]
and %r4, 3
call 2
stxb [%r6+4], %r0
mov %r0, 2
exit
mov %r0, 0
exit
"""


def _spied(monkeypatch) -> list[int]:
    """The slots of every call from native code back into the VM, from now on."""
    calls: list[int] = []
    orig = CompiledVm._interp

    def spy(self, slot):
        calls.append(slot)
        return orig(self, slot)

    monkeypatch.setattr(CompiledVm, "_interp", spy)
    return calls


def _contents(m) -> list:
    """A map's entries as plain bytes (per-CPU values: each CPU's)."""
    return sorted((bytes(k), [bytes(x) for x in v] if isinstance(v, list) else bytes(v))
                  for k, v in m.items())


@pytest.mark.parametrize("kind", ["hash", "percpu_hash", "lpm_trie"])
def test_lookups_stay_exact_while_the_program_writes(kind, monkeypatch):
    """A program that looks up, updates (every flag) and deletes keys of a hash, per-CPU
    hash or LPM map, 3,000 packets in one batch: each packet's verdict and bytes (the
    helpers' results included) and the map's final contents are the reference VM's one
    by one, and most lookups are answered natively."""
    rng = random.Random(kind)
    defn = MapDef("m", MAP_TYPE_IDS[kind], 8, 8, 48, flags=1 if kind == "lpm_trie" else 0)
    calls = _spied(monkeypatch)
    ref, fast = Vm([defn], _prog(WRITER)), CompiledVm([defn], _prog(WRITER))
    keys = _fill(ref.maps[0], "lpm_trie" if kind == "lpm_trie" else "hash", random.Random(1))
    _fill(fast.maps[0], "lpm_trie" if kind == "lpm_trie" else "hash", random.Random(1))
    pool = keys + [rng.randbytes(8) for _ in range(40)]
    if kind == "lpm_trie":
        pool = [rng.choice([8, 16, 24, 32, 33]).to_bytes(4, "little") + k[4:] for k in pool]
    packets = []
    for _ in range(3000):  # one delete in four: the map fills up and empties in turn
        ctl = bytes([rng.choice([0, 2, 4, 1]), rng.randrange(4)])
        packets.append(rng.randbytes(14) + rng.choice(pool) + ctl + rng.randbytes(
            rng.choice([6, 20])))
    packets[1500:1500] = [bytes(20)]  # a runt: one packet on its own, mid-stream
    packets.append(bytes(20))
    cols = fast.run_xdp_columns(packets)
    sizes = set()
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        assert (int(cols.verdict[i]), cols.packet_out(i)) == (r.verdict, r.packet_out), i
        sizes.add(len(ref.maps[0]))
    assert _contents(fast.maps[0]) == _contents(ref.maps[0])
    results = {p[4] for p in (cols.packet_out(i) for i in range(len(packets) - 1))}
    full = 256 - (28 if kind == "lpm_trie" else 7)  # a full trie: ENOSPC, else E2BIG
    assert {0, 256 - 2, full, 256 - 17, 256 - 22} <= results  # 0 and each errno
    assert max(sizes) == 48 and len(sizes) > 4  # full, and emptied by deletes
    lookups_on_vm = calls.count(LOOKUP_SLOT)
    assert lookups_on_vm < len(packets) // 3


# a hit copies the value's first 4 bytes over the packet's and passes; a miss inserts the
# key (BPF_ANY) with packet bytes 22..30 as its value, the result into packet byte 4, and
# drops (the per-packet path of syn_flood and katran_lb's connection table).
LRU_INSERT = _head(26) + """
jeq %r0, 0, +4
ldxw %r5, [%r0+0]
stxw [%r6+0], %r5
mov %r0, 2
exit
ldxdw %r5, [%r6+22]
stxdw [%r10-16], %r5
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -8
mov %r3, %r10
add %r3, -16
mov %r4, 0
call 2
stxb [%r6+4], %r0
mov %r0, 1
exit
mov %r0, 0
exit
"""


@pytest.mark.parametrize("log_cap", [maplookup.LOG_CAP, 3])
@pytest.mark.parametrize("kind", ["lru_hash", "lru_percpu_hash"])
def test_lru_lookups_keep_the_vms_order(kind, log_cap, monkeypatch):
    """LRU lookups answered natively (their uses logged, applied in order) and insertions
    into a full LRU map, 3,000 packets in one batch with runts: each packet's verdict and
    bytes are the reference VM's one by one, the map's recency order after is the VM's,
    inserting into the full map afterwards evicts the same keys in the same order, and
    most hits never called back (also when the log and the inserted values' buffer fill
    up: ``log_cap`` 3)."""
    monkeypatch.setattr(maplookup, "LOG_CAP", log_cap)
    if log_cap < 8:  # and room for two inserted values only
        monkeypatch.setattr(maplookup, "VBUF_BYTES", 16)
    rng = random.Random(kind)
    defn = MapDef("m", MAP_TYPE_IDS[kind], 8, 8, 32)
    calls = _spied(monkeypatch)
    ref, fast = Vm([defn], _prog(LRU_INSERT)), CompiledVm([defn], _prog(LRU_INSERT))
    pool = [rng.randbytes(8) for _ in range(64)]
    weights = [1 / (i + 1) for i in range(len(pool))]  # Zipf-like: hot and cold keys
    for m in (ref.maps[0], fast.maps[0]):
        for key in pool[:20]:
            m.update(key, key[::-1])
    packets = [rng.randbytes(14) + rng.choices(pool, weights)[0] + rng.randbytes(
        rng.choice([8, 30])) for _ in range(3000)]
    packets[700:700] = [bytes(20), bytes(14)]
    packets.append(bytes(20))
    cols = fast.run_xdp_columns(packets)
    verdicts = []
    for i, p in enumerate(packets):
        r = ref.run_xdp(p)
        verdicts.append(r.verdict)
        assert (int(cols.verdict[i]), cols.packet_out(i)) == (r.verdict, r.packet_out), i
    assert _ordered(fast.maps[0]) == _ordered(ref.maps[0])
    assert len(ref.maps[0]) == 32 and verdicts.count(1) > 100  # full, insertions evicted
    for k in range(40):  # user space fills it again: the same evictions, in order
        key = bytes([k]) * 8
        for m in (ref.maps[0], fast.maps[0]):
            m.update(key, key)
        assert _ordered(fast.maps[0]) == _ordered(ref.maps[0])
    hits = verdicts.count(2)
    lookups_on_vm = calls.count(LOOKUP_SLOT)
    # each key's first lookup after its insertion at most (the VM hands out its address)
    assert hits > 1500 and lookups_on_vm <= verdicts.count(1), (hits, lookups_on_vm)


def _ordered(m) -> list:
    """A map's keys and values in its own order (LRU: least recently used first)."""
    return [(bytes(k), [bytes(x) for x in v] if isinstance(v, list) else bytes(v))
            for k, v in m.items()]


@pytest.mark.parametrize("kind", ["hash", "lru_hash"])
def test_tables_follow_the_maps_between_batches(kind, monkeypatch):
    """Batch after batch, a hash table whose map kept its keys is reused as it is (not
    rebuilt: a value updated in place does not count) and one whose keys user space
    changed in between (a key deleted and re-inserted, a new value object at a new
    address; a key deleted) is rebuilt: every packet's verdict and bytes and the map's
    entries in order stay the VM's."""
    rng = random.Random(kind)
    defn = MapDef("m", MAP_TYPE_IDS[kind], 8, 8, 32)
    builds = []
    orig = maplookup.NativeMaps._hash_table

    def spy(self, m, kw):
        builds.append(m.name)
        return orig(self, m, kw)

    monkeypatch.setattr(maplookup.NativeMaps, "_hash_table", spy)
    ref, fast = Vm([defn], _prog(LRU_INSERT)), CompiledVm([defn], _prog(LRU_INSERT))
    pool = [rng.randbytes(8) for _ in range(24)]
    for m in (ref.maps[0], fast.maps[0]):
        for key in pool:
            m.update(key, key)
    after = []
    for step in range(6):
        packets = [rng.randbytes(14) + rng.choice(pool) + rng.randbytes(8)
                   for _ in range(300)]
        cols = fast.run_xdp_columns(packets)
        for i, p in enumerate(packets):
            r = ref.run_xdp(p)
            assert (int(cols.verdict[i]), cols.packet_out(i)) == (r.verdict, r.packet_out)
        assert _ordered(fast.maps[0]) == _ordered(ref.maps[0])
        after.append(len(builds))
        for m in (ref.maps[0], fast.maps[0]):
            if step == 1:  # the same key, a new value object (a new address)
                m.delete(pool[0])
                m.update(pool[0], bytes(8))
            elif step == 2:  # in place: the same keys
                m.update(pool[1], bytes(8))
            elif step == 4:  # gone (the next batch's program inserts it again)
                m.delete(pool[2])
    assert after == [1, 1, 2, 2, 2, 3]
