"""Native map lookups in batches (``ebpf.compiled.maplookup``) against the Python maps:
the same answers on array, per-CPU array, hash and LPM maps, most of them without calling
back into the VM, and no snapshot when a program can change its maps."""

from __future__ import annotations

import random

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.compiled import CompiledVm
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm

# r0 = lookup(map 0, 8 key bytes at packet offset 14); a hit copies the value's first
# 4 bytes over the packet's first 4 and passes, a miss drops, a short packet aborts.
LOOKUP = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 30
jgt %r4, %r3, +15
ldxdw %r5, [%r2+14]
stxdw [%r10-8], %r5
mov %r6, %r2
lddw %r1, map_idx 0
mov %r2, %r10
add %r2, -8
call 1
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
    calls = []
    orig = CompiledVm._interp

    def spy(self, slot):
        calls.append(slot)
        return orig(self, slot)

    monkeypatch.setattr(CompiledVm, "_interp", spy)
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


def test_no_snapshot_when_a_program_writes_maps():
    """A program that calls map_update_elem gets no hash/LPM snapshot (its lookups stay
    on the VM's handler); arrays stay native either way."""
    defn = MapDef("m", MAP_TYPE_IDS["hash"], 8, 8, 64)
    writer = _prog(LOOKUP.replace("call 1\n", "call 1\nmov %r1, 0\n", 1)
                   .replace("exit\n", "mov %r1, 0\ncall 2\nexit\n", 1))
    assert not CompiledVm([defn], writer)._native_maps.snapshots
    assert CompiledVm([defn], _prog(LOOKUP))._native_maps.snapshots
