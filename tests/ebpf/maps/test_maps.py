"""BPF maps: kernel semantics per map type, errno codes, JSON state."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf.errors import ElfError, VmError
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import MapDef
from ebpf.maps.base import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_CTXLEN_MASK,
    BPF_F_CURRENT_CPU,
    BPF_F_INNER_MAP,
    BPF_F_LOCK,
    BPF_F_NO_PREALLOC,
    BPF_NOEXIST,
    E2BIG,
    EAGAIN,
    EEXIST,
    EINVAL,
    ENODEV,
    ENOENT,
    ENOSPC,
    ENOTSUPP,
    EOPNOTSUPP,
    EOVERFLOW,
    OutputRecord,
    errno_name,
)
from ebpf.maps.factory import create_map, create_maps
from ebpf.maps.fd import ArrayOfMaps, PerfEventArray, ProgArray
from ebpf.maps.hash import HashMap, LruHashMap
from ebpf.maps.ringbuf import RingBuf
from ebpf.maps.state import MapStateError, dump_state, load_state
from tests.budget import examples


def mdef(type_name: str, key_size: int = 4, value_size: int = 4, max_entries: int = 4,
         name: str | None = None, **kw: Any) -> MapDef:
    return MapDef(name=name or type_name, type=MAP_TYPE_IDS[type_name], key_size=key_size,
                  value_size=value_size, max_entries=max_entries, **kw)


def mk(type_name: str, key_size: int = 4, value_size: int = 4, max_entries: int = 4,
       num_cpus: int = 1, **kw: Any) -> Any:
    return create_map(mdef(type_name, key_size, value_size, max_entries, **kw), num_cpus)


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def lpm_key(prefixlen: int, addr: str) -> bytes:
    return u32(prefixlen) + bytes(int(part) for part in addr.split("."))


# ---------------------------------------------------------------------------- ARRAY
def test_array_starts_zeroed():
    """Array values are preallocated and read as zeros before any update."""
    m = mk("array", value_size=8)
    assert m.lookup(u32(3)) == bytearray(8)
    assert len(m) == 4


def test_array_lookup_out_of_range_is_none():
    """An array lookup at index >= max_entries returns None."""
    assert mk("array").lookup(u32(4)) is None


def test_array_lookup_is_stable_storage():
    """Array lookup returns the same bytearray, and writes through it update the map."""
    m = mk("array", value_size=8)
    v = m.lookup(u32(1))
    assert v is m.lookup(u32(1))
    v[0:8] = u64(42)
    assert m.lookup(u32(1)) == u64(42)
    assert m.update(u32(1), u64(7)) == 0
    assert v == u64(7)


def test_array_update_out_of_range_is_e2big():
    """An array update at index >= max_entries returns -E2BIG."""
    assert mk("array").update(u32(4), u32(1)) == -E2BIG


def test_array_update_noexist_is_eexist():
    """BPF_NOEXIST on an array returns -EEXIST: every element exists."""
    assert mk("array").update(u32(0), u32(1), BPF_NOEXIST) == -EEXIST


def test_array_update_exist_succeeds():
    """BPF_EXIST on an array index in range succeeds."""
    m = mk("array")
    assert m.update(u32(2), u32(9), BPF_EXIST) == 0
    assert m.lookup(u32(2)) == u32(9)


@pytest.mark.parametrize("flags", [3, 8, 7, 1 << 40])
def test_array_update_unknown_flags_is_einval(flags):
    """Array update flags beyond ANY/NOEXIST/EXIST (ignoring F_LOCK) return -EINVAL."""
    assert mk("array").update(u32(0), u32(1), flags) == -EINVAL


def test_array_update_f_lock_without_spin_lock_is_einval():
    """BPF_F_LOCK on an array whose value has no bpf_spin_lock returns -EINVAL."""
    assert mk("array").update(u32(0), u32(1), BPF_F_LOCK) == -EINVAL


def test_array_update_check_order():
    """Array checks go: unknown flags, then index range, then NOEXIST, then F_LOCK."""
    m = mk("array")
    assert m.update(u32(9), u32(1), 3) == -EINVAL
    assert m.update(u32(9), u32(1), BPF_NOEXIST | BPF_F_LOCK) == -E2BIG
    assert m.update(u32(0), u32(1), BPF_NOEXIST | BPF_F_LOCK) == -EEXIST


def test_array_delete_is_einval():
    """Deleting from an array always returns -EINVAL."""
    assert mk("array").delete(u32(0)) == -EINVAL


def test_array_get_next_key():
    """Array iteration: None and out-of-range keys restart at 0; the last index ends it."""
    m = mk("array", max_entries=3)
    assert m.get_next_key(None) == u32(0)
    assert m.get_next_key(u32(0)) == u32(1)
    assert m.get_next_key(u32(2)) is None
    assert m.get_next_key(u32(77)) == u32(0)


def test_key_size_mismatch_raises_vm_error():
    """A key of the wrong size is a VM bug and raises VmError naming the sizes."""
    with pytest.raises(VmError, match=r"map 'array': key is 2 bytes, expected key_size 4"):
        mk("array").lookup(b"\0\0")


def test_value_size_mismatch_raises_vm_error():
    """A value of the wrong size raises VmError naming the sizes."""
    with pytest.raises(VmError, match=r"value is 3 bytes, expected value_size 4"):
        mk("hash").update(u32(0), b"abc")


# ---------------------------------------------------------------------- PERCPU_ARRAY
def test_percpu_array_program_update_touches_current_cpu_only():
    """A program's update of a per-CPU array changes only its own CPU's value."""
    m = mk("percpu_array", num_cpus=3)
    assert m.update(u32(1), u32(5), cpu=2) == 0
    assert m.lookup(u32(1), cpu=2) == u32(5)
    assert m.lookup(u32(1), cpu=0) == u32(0)
    assert m.lookup(u32(1), cpu=1) == u32(0)


def test_percpu_array_values_are_isolated_per_cpu():
    """Each CPU's value of a per-CPU array is a separate bytearray."""
    m = mk("percpu_array", num_cpus=2)
    m.lookup(u32(0), cpu=0)[:] = u32(11)
    m.lookup(u32(0), cpu=1)[:] = u32(22)
    assert m.lookup_percpu(u32(0)) == [u32(11), u32(22)]


def test_percpu_array_user_update_sets_all_cpus():
    """A user-space update (cpu=None) of a per-CPU array sets every CPU."""
    m = mk("percpu_array", num_cpus=3)
    assert m.update(u32(0), u32(8)) == 0
    assert m.lookup_percpu(u32(0)) == [u32(8)] * 3
    assert m.update_percpu(u32(1), [u32(1), u32(2), u32(3)]) == 0
    assert [m.lookup(u32(1), cpu=c) for c in range(3)] == [u32(1), u32(2), u32(3)]


def test_percpu_array_user_update_rejects_f_lock_first():
    """From user space a per-CPU array refuses any flag above BPF_EXIST before the index."""
    m = mk("percpu_array", num_cpus=2)
    assert m.update(u32(9), u32(1), BPF_F_LOCK) == -EINVAL
    assert m.update(u32(9), u32(1), BPF_F_LOCK, cpu=0) == -E2BIG
    assert m.update(u32(0), u32(1), BPF_NOEXIST) == -EEXIST


def test_percpu_lookup_bad_cpu_is_none():
    """A per-CPU lookup for a CPU that does not exist returns None."""
    assert mk("percpu_array", num_cpus=2).lookup(u32(0), cpu=2) is None
    m = mk("percpu_hash", num_cpus=2)
    m.update(u32(0), u32(1))
    assert m.lookup(u32(0), cpu=5) is None


def test_update_bad_cpu_raises_vm_error():
    """An update from a CPU index outside num_cpus raises VmError."""
    with pytest.raises(VmError, match=r"cpu 4 out of range \(num_cpus 2\)"):
        mk("percpu_hash", num_cpus=2).update(u32(0), u32(1), cpu=4)


def test_percpu_values_count_checked():
    """update_percpu needs exactly one value per CPU."""
    with pytest.raises(VmError, match=r"1 per-CPU values, expected 2"):
        mk("percpu_hash", num_cpus=2).update_percpu(u32(0), [u32(1)])


# ----------------------------------------------------------------------------- HASH
def test_hash_insert_lookup_delete():
    """A hash map stores, finds and deletes entries."""
    m = mk("hash")
    assert m.lookup(u32(1)) is None
    assert m.update(u32(1), u32(10)) == 0
    assert m.lookup(u32(1)) == u32(10)
    assert m.delete(u32(1)) == 0
    assert m.lookup(u32(1)) is None


def test_hash_full_new_key_is_e2big():
    """Inserting a new key into a full hash map returns -E2BIG."""
    m = mk("hash", max_entries=2)
    assert m.update(u32(1), u32(1)) == 0
    assert m.update(u32(2), u32(2)) == 0
    assert m.update(u32(3), u32(3)) == -E2BIG
    assert m.lookup(u32(3)) is None


def test_hash_full_replace_existing_succeeds():
    """Replacing an existing key in a full hash map succeeds."""
    m = mk("hash", max_entries=1)
    m.update(u32(1), u32(1))
    assert m.update(u32(1), u32(5)) == 0
    assert m.lookup(u32(1)) == u32(5)


def test_hash_no_prealloc_full_is_e2big():
    """A BPF_F_NO_PREALLOC hash map also returns -E2BIG when full."""
    m = mk("hash", max_entries=1, flags=BPF_F_NO_PREALLOC)
    m.update(u32(1), u32(1))
    assert m.update(u32(2), u32(1)) == -E2BIG


def test_hash_noexist_on_existing_is_eexist():
    """BPF_NOEXIST on an existing hash key returns -EEXIST and keeps the value."""
    m = mk("hash")
    m.update(u32(1), u32(1))
    assert m.update(u32(1), u32(2), BPF_NOEXIST) == -EEXIST
    assert m.lookup(u32(1)) == u32(1)


def test_hash_exist_on_missing_is_enoent():
    """BPF_EXIST on a missing hash key returns -ENOENT and inserts nothing."""
    m = mk("hash")
    assert m.update(u32(1), u32(2), BPF_EXIST) == -ENOENT
    assert len(m) == 0


@pytest.mark.parametrize("flags", [3, BPF_F_LOCK, BPF_F_LOCK | BPF_EXIST, 8])
def test_hash_bad_flags_is_einval(flags):
    """Hash flags beyond ANY/NOEXIST/EXIST, and BPF_F_LOCK without a spin lock, give -EINVAL."""
    m = mk("hash")
    m.update(u32(1), u32(1))
    assert m.update(u32(1), u32(2), flags) == -EINVAL


def test_hash_delete_missing_is_enoent():
    """Deleting a missing hash key returns -ENOENT."""
    assert mk("hash").delete(u32(1)) == -ENOENT


def test_hash_lookup_is_stable_across_updates():
    """A hash value's bytearray stays the same object across updates of that key."""
    m = mk("hash")
    m.update(u32(1), u32(1))
    v = m.lookup(u32(1))
    m.update(u32(1), u32(2), BPF_EXIST)
    assert v is m.lookup(u32(1)) and v == u32(2)
    v[:] = u32(3)
    assert m.lookup(u32(1)) == u32(3)


def test_hash_get_next_key_iterates_all():
    """Hash iteration visits each key once and ends with None; an unknown key restarts."""
    m = mk("hash")
    for k in (5, 1, 9):
        m.update(u32(k), u32(k))
    seen, key = [], None
    while (key := m.get_next_key(key)) is not None:
        seen.append(key)
    assert sorted(seen) == [u32(1), u32(5), u32(9)]
    assert m.get_next_key(u32(77)) == seen[0]
    assert mk("hash").get_next_key(None) is None


def test_hash_items_do_not_copy():
    """items() yields the live value bytearrays."""
    m = mk("hash")
    m.update(u32(1), u32(1))
    [(key, value)] = list(m.items())
    assert key == u32(1) and value is m.lookup(u32(1))


# ---------------------------------------------------------------------- PERCPU_HASH
def test_percpu_hash_program_insert_zeroes_other_cpus():
    """A program inserting into a per-CPU hash sets its CPU and zero-fills the others."""
    m = mk("percpu_hash", num_cpus=3)
    assert m.update(u32(1), u32(7), cpu=1) == 0
    assert m.lookup_percpu(u32(1)) == [u32(0), u32(7), u32(0)]


def test_percpu_hash_program_update_touches_current_cpu_only():
    """A program updating an existing per-CPU hash key changes only its CPU's value."""
    m = mk("percpu_hash", num_cpus=2)
    m.update(u32(1), u32(3))
    assert m.update(u32(1), u32(9), cpu=0) == 0
    assert m.lookup_percpu(u32(1)) == [u32(9), u32(3)]


def test_percpu_hash_user_update_sets_all_cpus():
    """A user-space per-CPU hash update sets every CPU; update_percpu sets each its own."""
    m = mk("percpu_hash", num_cpus=2)
    assert m.update(u32(1), u32(4)) == 0
    assert m.lookup_percpu(u32(1)) == [u32(4), u32(4)]
    assert m.update_percpu(u32(1), [u32(1), u32(2)]) == 0
    assert m.lookup(u32(1), cpu=1) == u32(2)


def test_percpu_hash_full_and_flags():
    """A per-CPU hash has HASH's errno rules: E2BIG, EEXIST, ENOENT, EINVAL for F_LOCK."""
    m = mk("percpu_hash", max_entries=1, num_cpus=2)
    assert m.update(u32(1), u32(1), cpu=0) == 0
    assert m.update(u32(2), u32(1), cpu=0) == -E2BIG
    assert m.update(u32(1), u32(1), BPF_NOEXIST, cpu=0) == -EEXIST
    assert m.update(u32(2), u32(1), BPF_EXIST, cpu=0) == -ENOENT
    assert m.update(u32(1), u32(1), BPF_F_LOCK, cpu=0) == -EINVAL


# ------------------------------------------------------------------------------ LRU
def test_lru_evicts_least_recently_used_on_insert():
    """Inserting into a full LRU hash evicts the least recently inserted, unused key."""
    m = mk("lru_hash", max_entries=3)
    for k in (1, 2, 3):
        assert m.update(u32(k), u32(k)) == 0
    assert m.update(u32(4), u32(4)) == 0
    assert m.lookup(u32(1)) is None
    assert [k for k, _ in m.items()] == [u32(2), u32(3), u32(4)]


def test_lru_lookup_marks_entry_used():
    """A lookup makes an LRU entry most recently used, so the next oldest is evicted."""
    m = mk("lru_hash", max_entries=3)
    for k in (1, 2, 3):
        m.update(u32(k), u32(k))
    m.lookup(u32(1))
    m.update(u32(4), u32(4))
    assert m.lookup(u32(2)) is None
    assert m.lookup(u32(1)) == u32(1)


def test_lru_update_marks_entry_used_without_evicting():
    """Updating an existing LRU key marks it used and evicts nothing."""
    m = mk("lru_hash", max_entries=2)
    m.update(u32(1), u32(1))
    m.update(u32(2), u32(2))
    assert m.update(u32(1), u32(5)) == 0
    assert len(m) == 2
    m.update(u32(3), u32(3))
    assert [k for k, _ in m.items()] == [u32(1), u32(3)]


def test_lru_eviction_order_sequence():
    """A longer sequence of LRU uses evicts keys in exact least-recently-used order."""
    m = mk("lru_hash", max_entries=3)
    for k in (1, 2, 3):
        m.update(u32(k), u32(k))
    m.lookup(u32(2))
    m.lookup(u32(1))
    evicted = []
    for k in (4, 5, 6):
        before = {key for key, _ in m.items()}
        m.update(u32(k), u32(k))
        evicted += sorted(before - {key for key, _ in m.items()})
    assert evicted == [u32(3), u32(2), u32(1)]


def test_lru_failed_update_does_not_evict():
    """An LRU update that fails (-ENOENT / -EEXIST) evicts nothing in our exact model."""
    m = mk("lru_hash", max_entries=1)
    m.update(u32(1), u32(1))
    assert m.update(u32(2), u32(2), BPF_EXIST) == -ENOENT
    assert m.update(u32(1), u32(2), BPF_NOEXIST) == -EEXIST
    assert m.lookup(u32(1)) == u32(1)


def test_lru_noexist_insert_when_full_evicts():
    """BPF_NOEXIST with a new key into a full LRU map evicts and inserts."""
    m = mk("lru_hash", max_entries=1)
    m.update(u32(1), u32(1))
    assert m.update(u32(2), u32(2), BPF_NOEXIST) == 0
    assert [k for k, _ in m.items()] == [u32(2)]


def test_lru_f_lock_is_einval():
    """LRU hash maps refuse BPF_F_LOCK with -EINVAL."""
    assert mk("lru_hash").update(u32(1), u32(1), BPF_F_LOCK) == -EINVAL


def test_lru_items_do_not_mark_used():
    """Iterating an LRU map does not change which entry is evicted next."""
    m = mk("lru_hash", max_entries=2)
    m.update(u32(1), u32(1))
    m.update(u32(2), u32(2))
    list(m.items())
    m.get_next_key(None)
    m.update(u32(3), u32(3))
    assert m.lookup(u32(1)) is None


def test_lru_peek_touch_and_least_recent():
    """``peek`` reads without marking used, ``touch`` marks keys used in turn (missing
    ones ignored) exactly as lookups would, ``least_recent`` names the next victim."""
    m, ref = mk("lru_hash", max_entries=4), mk("lru_hash", max_entries=4)
    for k in (1, 2, 3, 4):
        m.update(u32(k), u32(k))
        ref.update(u32(k), u32(k))
    assert m.peek(u32(1)) == u32(1) and m.peek(u32(9)) is None
    assert m.least_recent() == u32(1)  # the peek did not use it
    m.touch([u32(2), u32(9), u32(1), u32(2)])
    for k in (2, 1, 2):
        ref.lookup(u32(k))
    assert [k for k, _ in m.items()] == [k for k, _ in ref.items()] == \
        [u32(3), u32(4), u32(1), u32(2)]
    assert m.least_recent() == u32(3)
    assert mk("lru_hash").least_recent() is None


def test_hash_version_counts_key_set_changes():
    """``version`` moves on an insertion, an eviction, a delete and a clear; not on an
    update in place, a failed update, a lookup or a touch."""
    m = mk("lru_hash", max_entries=2)
    v = m.version
    m.update(u32(1), u32(1))
    assert m.version == v + 1
    m.update(u32(1), u32(2))
    m.update(u32(1), u32(2), BPF_NOEXIST)
    m.lookup(u32(1))
    m.touch([u32(1)])
    m.delete(u32(7))
    assert m.version == v + 1
    m.update(u32(2), u32(2))
    m.update(u32(3), u32(3))  # evicts 1
    m.delete(u32(2))
    m.clear()
    assert m.version == v + 5


def test_lru_percpu_evicts_and_isolates_cpus():
    """An LRU per-CPU hash evicts like LRU_HASH and keeps per-CPU values apart."""
    m = mk("lru_percpu_hash", max_entries=2, num_cpus=2)
    m.update(u32(1), u32(1), cpu=0)
    m.update(u32(2), u32(2), cpu=1)
    m.lookup(u32(1), cpu=1)
    m.update(u32(3), u32(3), cpu=0)
    assert m.lookup_percpu(u32(2)) is None
    assert m.lookup_percpu(u32(1)) == [u32(1), u32(0)]
    assert m.lookup_percpu(u32(3)) == [u32(3), u32(0)]


# ------------------------------------------------------------------------- LPM_TRIE
@pytest.fixture
def routes():
    m = mk("lpm_trie", key_size=8, value_size=4, max_entries=16, flags=BPF_F_NO_PREALLOC)
    for prefix, val in (("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("10.1.2.0/24", 3),
                        ("192.168.0.0/16", 4)):
        addr, plen = prefix.split("/")
        assert m.update(lpm_key(int(plen), addr), u32(val)) == 0
    return m


def test_lpm_longest_prefix_match(routes):
    """LPM lookup returns the value of the longest stored prefix matching the address."""
    assert routes.lookup(lpm_key(32, "10.1.2.3")) == u32(3)
    assert routes.lookup(lpm_key(32, "10.1.3.3")) == u32(2)
    assert routes.lookup(lpm_key(32, "10.2.0.1")) == u32(1)
    assert routes.lookup(lpm_key(32, "192.168.9.9")) == u32(4)
    assert routes.lookup(lpm_key(32, "11.0.0.1")) is None


def test_lpm_default_route_slash_zero(routes):
    """A /0 prefix matches every address that nothing longer matches."""
    assert routes.update(lpm_key(0, "0.0.0.0"), u32(99)) == 0
    assert routes.lookup(lpm_key(32, "11.0.0.1")) == u32(99)
    assert routes.lookup(lpm_key(32, "10.1.2.3")) == u32(3)


def test_lpm_host_route_slash_32(routes):
    """A /32 prefix matches exactly one address and wins over shorter prefixes."""
    assert routes.update(lpm_key(32, "10.1.2.3"), u32(7)) == 0
    assert routes.lookup(lpm_key(32, "10.1.2.3")) == u32(7)
    assert routes.lookup(lpm_key(32, "10.1.2.4")) == u32(3)


def test_lpm_lookup_limited_by_key_prefixlen(routes):
    """A lookup key's prefixlen bounds the stored prefixes that may match."""
    assert routes.lookup(lpm_key(16, "10.1.2.3")) == u32(2)
    assert routes.lookup(lpm_key(7, "10.1.2.3")) is None


def test_lpm_lookup_prefixlen_above_max_is_none(routes):
    """A lookup whose prefixlen exceeds 8 * data size matches nothing."""
    assert routes.lookup(lpm_key(33, "10.1.2.3")) is None


def test_lpm_trailing_bits_ignored_but_kept(routes):
    """Bits past the prefix do not distinguish entries; the stored key keeps the latest."""
    assert routes.update(lpm_key(24, "10.1.2.77"), u32(30)) == 0
    assert len(routes) == 4
    assert routes.lookup(lpm_key(32, "10.1.2.1")) == u32(30)
    assert lpm_key(24, "10.1.2.77") in [k for k, _ in routes.items()]
    assert routes.delete(lpm_key(24, "10.1.2.0")) == 0


def test_lpm_prefixlen_too_long_is_einval(routes):
    """Update and delete with prefixlen above 8 * data size return -EINVAL."""
    assert routes.update(lpm_key(33, "10.0.0.0"), u32(1)) == -EINVAL
    assert routes.delete(lpm_key(33, "10.0.0.0")) == -EINVAL


def test_lpm_flags(routes):
    """LPM: NOEXIST on a stored prefix -EEXIST, EXIST on a missing one -ENOENT, others -EINVAL."""
    assert routes.update(lpm_key(8, "10.0.0.0"), u32(5), BPF_NOEXIST) == -EEXIST
    assert routes.update(lpm_key(9, "10.0.0.0"), u32(5), BPF_EXIST) == -ENOENT
    assert routes.update(lpm_key(8, "10.0.0.0"), u32(5), BPF_EXIST) == 0
    assert routes.update(lpm_key(8, "10.0.0.0"), u32(5), BPF_F_LOCK) == -EINVAL


def test_lpm_full_is_enospc_but_replace_works():
    """A full LPM trie refuses a new prefix with -ENOSPC and still replaces existing ones."""
    m = mk("lpm_trie", key_size=8, max_entries=1)
    assert m.update(lpm_key(8, "10.0.0.0"), u32(1)) == 0
    assert m.update(lpm_key(16, "10.1.0.0"), u32(2)) == -ENOSPC
    assert m.update(lpm_key(8, "10.0.0.0"), u32(3)) == 0
    assert m.lookup(lpm_key(32, "10.9.9.9")) == u32(3)


def test_lpm_delete_missing_is_enoent(routes):
    """Deleting a prefix that is not stored returns -ENOENT, even if a longer one matches."""
    assert routes.delete(lpm_key(12, "10.0.0.0")) == -ENOENT
    assert routes.delete(lpm_key(16, "10.1.0.0")) == 0
    assert routes.lookup(lpm_key(32, "10.1.3.3")) == u32(1)


def test_lpm_get_next_key_postorder():
    """LPM iteration is the kernel's postorder: more specific prefixes first, left first."""
    m = mk("lpm_trie", key_size=8, max_entries=8)
    for key in (lpm_key(16, "192.168.0.0"), lpm_key(24, "192.168.0.0"),
                lpm_key(24, "192.168.128.0"), lpm_key(24, "192.168.1.0")):
        m.update(key, u32(1))
    order: list[bytes] = []
    cursor = None
    while (cursor := m.get_next_key(cursor)) is not None:
        order.append(cursor)
    assert order == [lpm_key(24, "192.168.0.0"), lpm_key(24, "192.168.1.0"),
                     lpm_key(24, "192.168.128.0"), lpm_key(16, "192.168.0.0")]
    assert m.get_next_key(lpm_key(20, "192.168.0.0")) == order[0]


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 16), st.integers(0, 0xFFFF)), max_size=20),
       st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=10))
def test_lpm_matches_brute_force(prefixes, addrs):
    """LPM lookups agree with a brute-force longest-prefix search over the stored prefixes."""
    m = mk("lpm_trie", key_size=6, max_entries=64)
    model: dict[tuple[int, int], int] = {}
    for i, (plen, bits) in enumerate(prefixes):
        m.update(u32(plen) + bits.to_bytes(2, "big"), u32(i))
        model[(plen, bits >> (16 - plen))] = i
    for addr in addrs:
        best = max((p for p in model if addr >> (16 - p[0]) == p[1]), default=None,
                   key=lambda p: p[0])
        got = m.lookup(u32(16) + addr.to_bytes(2, "big"))
        assert (got is None) == (best is None)
        if best is not None:
            assert got == u32(model[best])


# ----------------------------------------------------------------------- map-in-map
def test_array_of_maps_lookup_returns_inner_map():
    """An array of maps hands back the inner map object; empty slots read as None."""
    inner_def = mdef("hash", name="inner")
    outer = create_map(mdef("array_of_maps", max_entries=2, inner=inner_def))
    inner = create_map(inner_def)
    assert outer.lookup(u32(0)) is None
    assert outer.update(u32(0), inner) == 0
    assert outer.lookup(u32(0)) is inner
    assert outer.lookup(u32(5)) is None


def test_array_of_maps_errnos():
    """Array of maps: flags other than ANY -EINVAL, beyond max -E2BIG, empty delete -ENOENT."""
    inner = mk("hash", name="inner")
    outer = mk("array_of_maps", max_entries=2)
    assert outer.update(u32(0), inner, BPF_NOEXIST) == -EINVAL
    assert outer.update(u32(2), inner) == -E2BIG
    assert outer.delete(u32(0)) == -ENOENT
    assert outer.delete(u32(2)) == -E2BIG
    outer.update(u32(1), inner)
    assert outer.delete(u32(1)) == 0
    assert outer.get_next_key(u32(0)) == u32(1)


def test_map_in_map_rejects_incompatible_inner():
    """An inner map unlike the template (type, sizes, array max_entries) gets -EINVAL."""
    tmpl = mdef("array", max_entries=4, name="tmpl")
    outer = create_map(mdef("array_of_maps", inner=tmpl))
    assert outer.update(u32(0), mk("array", max_entries=8)) == -EINVAL
    assert outer.update(u32(0), mk("hash", max_entries=4)) == -EINVAL
    assert outer.update(u32(0), mk("array", max_entries=4)) == 0
    loose = create_map(mdef("array_of_maps", inner=mdef("array", max_entries=4,
                                                        flags=BPF_F_INNER_MAP)))
    assert loose.update(u32(0), mk("array", max_entries=8, flags=BPF_F_INNER_MAP)) == 0


def test_map_in_map_rejects_bytes():
    """Offering an fd (bytes) to a map-in-map raises VmError: there are no fds in the VM."""
    with pytest.raises(VmError, match=r"value must be the inner BpfMap, not bytes"):
        mk("array_of_maps").update(u32(0), u32(3))


def test_hash_of_maps_flags():
    """A hash of maps follows HASH rules for flags and capacity."""
    outer = mk("hash_of_maps", key_size=8, max_entries=1)
    inner = mk("array", name="inner")
    assert outer.update(u64(1), inner, BPF_EXIST) == -ENOENT
    assert outer.update(u64(1), inner) == 0
    assert outer.update(u64(1), inner, BPF_NOEXIST) == -EEXIST
    assert outer.update(u64(2), inner) == -E2BIG
    assert outer.update(u64(1), inner, BPF_F_LOCK) == -EINVAL
    assert outer.lookup(u64(1)) is inner
    assert outer.delete(u64(2)) == -ENOENT


# ------------------------------------------------------------------------ PROG_ARRAY
def test_prog_array_slots():
    """A prog array maps an index to a program; only BPF_ANY updates are accepted."""
    m = mk("prog_array", max_entries=4)
    assert isinstance(m, ProgArray)
    assert m.update(u32(1), "xdp_next") == 0
    assert m.lookup(u32(1)) == "xdp_next" and m.get_prog(1) == "xdp_next"
    assert m.get_prog(2) is None
    assert m.update(u32(1), "x", BPF_EXIST) == -EINVAL
    assert m.update(u32(4), "x") == -E2BIG
    assert m.delete(u32(2)) == -ENOENT


def test_prog_array_initial_values():
    """PROG_ARRAY slots from the definition's values are filled at creation."""
    m = create_map(mdef("prog_array", values={0: "a", 3: "b"}))
    assert [(k, v) for k, v in m.items()] == [(u32(0), "a"), (u32(3), "b")]


# ------------------------------------------------------------------- redirect maps
def test_devmap_redirect_target():
    """A devmap returns the ifindex for redirect_map and None for empty slots."""
    m = mk("devmap", max_entries=4)
    assert m.update(u32(1), u32(7)) == 0
    assert m.redirect_target(1) == 7
    assert m.redirect_target(2) is None
    assert m.redirect_target((1 << 32) | 1) == 7
    assert m.lookup(u32(1)) == u32(7)


def test_devmap_errnos():
    """Devmap: NOEXIST -EEXIST, beyond -E2BIG, bad flags -EINVAL, delete beyond -EINVAL."""
    m = mk("devmap", max_entries=2)
    assert m.update(u32(0), u32(3), BPF_NOEXIST) == -EEXIST
    assert m.update(u32(2), u32(3)) == -E2BIG
    assert m.update(u32(0), u32(3), BPF_F_LOCK) == -EINVAL
    assert m.delete(u32(2)) == -EINVAL
    assert m.delete(u32(0)) == 0


def test_devmap_ifindex_zero_empties_slot():
    """Writing ifindex 0 to a devmap empties the slot; with a program fd it is -EINVAL."""
    m = mk("devmap", value_size=8, max_entries=2)
    m.update(u32(0), u32(4) + u32(0))
    assert m.update(u32(0), u32(0) + u32(0)) == 0
    assert m.lookup(u32(0)) is None
    assert m.update(u32(0), u32(0) + u32(5)) == -EINVAL


def test_devmap_hash_semantics():
    """Devmap hash: keyed by any u32, E2BIG when full, ifindex 0 -EINVAL, no EXIST check."""
    m = mk("devmap_hash", max_entries=1)
    assert m.update(u32(1000), u32(0)) == -EINVAL
    assert m.update(u32(1000), u32(5), BPF_EXIST) == 0
    assert m.redirect_target(1000) == 5
    assert m.update(u32(1001), u32(6)) == -E2BIG
    assert m.update(u32(1000), u32(6), BPF_NOEXIST) == -EEXIST
    assert m.delete(u32(1001)) == -ENOENT
    assert m.redirect_target(1001) is None


def test_cpumap_semantics():
    """Cpumap: target is the CPU; qsize 0 empties, >16384 -EOVERFLOW, absent CPU -ENODEV."""
    m = mk("cpumap", max_entries=8, num_cpus=2)
    assert m.update(u32(1), u32(192)) == 0
    assert m.redirect_target(1) == 1
    assert m.redirect_target(0) is None
    assert m.update(u32(1), u32(16385)) == -EOVERFLOW
    assert m.update(u32(5), u32(64)) == -ENODEV
    assert m.update(u32(8), u32(64)) == -E2BIG
    assert m.update(u32(1), u32(64), BPF_NOEXIST) == -EEXIST
    assert m.update(u32(1), u32(0)) == 0
    assert m.redirect_target(1) is None


def test_xskmap_semantics():
    """Xskmap: the same socket again is fine, otherwise NOEXIST -EEXIST, EXIST -ENOENT."""
    m = mk("xskmap", max_entries=4)
    assert m.update(u32(0), u32(3), BPF_EXIST) == -ENOENT
    assert m.update(u32(0), u32(3)) == 0
    assert m.update(u32(0), u32(3), BPF_NOEXIST) == 0
    assert m.update(u32(0), u32(4), BPF_NOEXIST) == -EEXIST
    assert m.redirect_target(0) == 3
    assert m.update(u32(4), u32(3)) == -E2BIG
    assert m.delete(u32(4)) == -EINVAL
    assert m.delete(u32(0)) == 0 and m.redirect_target(0) is None


def test_redirect_target_on_other_maps_raises():
    """redirect_target on a map bpf_redirect_map does not accept raises VmError."""
    with pytest.raises(VmError, match=r"map 'hash' \(hash\) cannot be used with"):
        mk("hash").redirect_target(0)


# ------------------------------------------------------------------ output maps
def test_perf_event_output_current_cpu():
    """perf_event_output with BPF_F_CURRENT_CPU records the data on the calling CPU."""
    m = mk("perf_event_array", max_entries=4, num_cpus=2)
    assert isinstance(m, PerfEventArray)
    assert m.output(b"abc", BPF_F_CURRENT_CPU, cpu=1) == 0
    assert m.output(b"x", 0, cpu=0) == 0
    assert m.records == [OutputRecord(1, b"abc"), OutputRecord(0, b"x")]


def test_perf_event_output_errnos():
    """perf_event_output: bad flags -EINVAL, beyond -E2BIG, no event -ENOENT, other CPU -EOPNOTSUPP."""
    m = mk("perf_event_array", max_entries=4, num_cpus=2)
    assert m.output(b"a", 1 << 62) == -EINVAL
    assert m.output(b"a", 4) == -E2BIG
    assert m.output(b"a", 3) == -ENOENT
    assert m.output(b"a", 1, cpu=0) == -EOPNOTSUPP
    assert m.output(b"a", BPF_F_CURRENT_CPU | (20 << 32)) == 0
    assert m.delete(u32(0)) == 0
    assert m.output(b"a", BPF_F_CURRENT_CPU) == -ENOENT
    assert PerfEventArray.check_output_flags(BPF_F_CTXLEN_MASK) == 0
    assert m.update(u32(0), u32(9), BPF_NOEXIST) == -EINVAL


def test_ringbuf_output_records():
    """bpf_ringbuf_output appends records in order."""
    m = mk("ringbuf", key_size=0, value_size=0, max_entries=4096)
    assert isinstance(m, RingBuf)
    assert m.output(b"one") == 0
    assert m.output(b"two", cpu=0) == 0
    assert [r.data for r in m.records] == [b"one", b"two"]
    assert m.avail_data == 32


def test_ringbuf_full_is_eagain_until_consumed():
    """A full ring buffer refuses output with -EAGAIN until user space consumes."""
    m = mk("ringbuf", key_size=0, value_size=0, max_entries=4096)
    assert m.output(bytes(4081)) == -EAGAIN  # 4096 bytes with its header: never fits
    assert m.output(bytes(4080)) == 0
    assert m.output(b"") == -EAGAIN
    assert m.consume() == [bytes(4080)]
    assert m.output(b"again") == 0


def test_ringbuf_bad_flags_is_einval():
    """bpf_ringbuf_output with flags other than the wakeup bits returns -EINVAL."""
    m = mk("ringbuf", key_size=0, value_size=0, max_entries=4096)
    assert m.output(b"a", 4) == -EINVAL
    assert m.output(b"a", 3) == 0


def test_ringbuf_reserve_submit_discard():
    """Reserved samples become records on submit; discarded ones never do."""
    m = mk("ringbuf", key_size=0, value_size=0, max_entries=4096)
    a = m.reserve(4)
    b = m.reserve(4)
    assert a is not None and b is not None
    assert m.reserve(4, flags=1) is None
    b.data[:] = b"bbbb"
    m.submit(b)
    assert m.consume() == []  # a is still reserved, in front of b
    m.discard(a)
    assert m.consume() == [b"bbbb"]
    assert [r.data for r in m.records] == [b"bbbb"]
    with pytest.raises(VmError, match=r"not reserved \(already committed\)"):
        m.submit(b)


def test_ringbuf_pending_record_blocks_reservation():
    """A record still reserved keeps the producer from wrapping past it."""
    m = mk("ringbuf", key_size=0, value_size=0, max_entries=4096)
    held = m.reserve(8)
    assert m.output(bytes(2000)) == 0
    assert m.consume() == []
    assert m.output(bytes(2072)) == -EAGAIN
    assert held is not None
    m.submit(held)
    assert len(m.consume()) == 2
    assert m.output(bytes(2072)) == 0


def test_ringbuf_has_no_entries():
    """Ring buffers have no key/value entries: update and delete return -ENOTSUPP."""
    m = mk("ringbuf", key_size=0, value_size=0, max_entries=4096)
    assert m.lookup(b"") is None
    assert m.update(b"", b"") == -ENOTSUPP
    assert m.delete(b"") == -ENOTSUPP


# -------------------------------------------------------------------- global data
def test_global_data_initial_contents():
    """A .data map is a one-entry array holding the section's initial bytes."""
    m = create_map(MapDef("prog.data", MAP_TYPE_IDS["array"], 4, 8, 1, section=".data",
                          initial=b"\x01\x02\x03"))
    assert m.lookup(u32(0)) == b"\x01\x02\x03" + bytes(5)
    assert m.lookup(u32(1)) is None
    assert len(m) == 1


def test_global_data_bss_is_zero():
    """A .bss map starts as zeros of the section size."""
    m = create_map(MapDef("prog.bss", MAP_TYPE_IDS["array"], 4, 16, 1, section=".bss"))
    assert m.lookup(u32(0)) == bytes(16)


def test_global_data_size_from_initial():
    """A global-data map with value_size 0 takes the size of its initial contents."""
    m = create_map(MapDef(".rodata", MAP_TYPE_IDS["array"], 0, 0, 0, section=".rodata",
                          initial=b"hello"))
    assert m.value_size == 5 and m.max_entries == 1
    assert m.lookup(u32(0)) == b"hello"


# -------------------------------------------------------------------- creation
def test_create_unknown_type_names_it():
    """An unsupported map type raises ElfError naming the map and the type."""
    with pytest.raises(ElfError, match=r"map 'q': map type 'queue' is not supported"):
        create_map(mdef("queue", name="q"))
    with pytest.raises(ElfError, match=r"map type 'type id 999' is not supported"):
        create_map(MapDef("x", 999, 4, 4, 1))


def test_create_refuses_bad_definitions():
    """Definitions the kernel refuses raise ElfError saying what was expected."""
    with pytest.raises(ElfError, match=r"map 'array' \(array\): key_size 8, expected 4"):
        mk("array", key_size=8)
    with pytest.raises(ElfError, match=r"value_size 12, expected 4 or 8"):
        mk("devmap", value_size=12)
    with pytest.raises(ElfError, match=r"max_entries 5000 must be a power of 2"):
        mk("ringbuf", key_size=0, value_size=0, max_entries=5000)
    with pytest.raises(ElfError, match=r"max_entries 0 must be positive"):
        mk("hash", max_entries=0)


def test_create_maps_resolves_inner_maps():
    """create_maps fills map-in-map slots named in the definition's values."""
    inner = mdef("hash", name="inner")
    maps = create_maps([inner, mdef("array_of_maps", name="outer", inner=inner,
                                    values={1: "inner"})])
    assert maps["outer"].lookup(u32(1)) is maps["inner"]
    with pytest.raises(ElfError, match=r"slot 0 names unknown map 'nope'"):
        create_maps([mdef("array_of_maps", name="o", values={0: "nope"})])


def test_errno_name():
    """errno_name spells return codes as the kernel headers do."""
    assert errno_name(-E2BIG) == "-E2BIG" and errno_name(0) == "0"


# ---------------------------------------------------------------------- JSON state
def _state_maps() -> dict[str, Any]:
    inner = mdef("array", max_entries=2, name="inner")
    defs = [
        mdef("array", max_entries=2, name="arr"),
        mdef("percpu_array", max_entries=2, name="pca"),
        mdef("hash", name="h"),
        mdef("percpu_hash", name="pch"),
        mdef("lru_hash", name="lru"),
        mdef("lpm_trie", key_size=8, name="lpm"),
        inner,
        mdef("array_of_maps", max_entries=2, name="aom", inner=inner),
        mdef("hash_of_maps", name="hom", inner=inner),
        mdef("prog_array", name="progs"),
        mdef("devmap", value_size=8, name="dev"),
        mdef("devmap_hash", name="devh"),
        mdef("cpumap", name="cpus"),
        mdef("xskmap", name="xsks"),
        mdef("ringbuf", key_size=0, value_size=0, max_entries=4096, name="rb"),
    ]
    return create_maps(defs, num_cpus=2)


STATE = {"maps": {
    "arr": [{"key": "00000000", "value": "01000000"}],
    "pca": [{"key": "00000000", "values": ["01000000", "02000000"]}],
    "h": [{"key": "01000000", "value": "0a000000"}, {"key": "02000000", "value": "0b000000"}],
    "pch": [{"key": "05000000", "values": ["01000000", "00000000"]}],
    "lru": [{"key": "03000000", "value": "0c000000"}],
    "lpm": [{"key": "080000000a000000", "value": "01000000"},
            {"key": "18000000c0a80100", "value": "02000000"}],
    "inner": [{"key": "00000000", "value": "07000000"}],
    "aom": [{"key": "01000000", "inner": "inner"}],
    "hom": [{"key": "09000000", "inner": "inner"}],
    "progs": [{"key": "00000000", "prog": "xdp_a"}, {"key": "02000000", "prog": "xdp_b"}],
    "dev": [{"key": "01000000", "value": "0400000000000000"}],
    "devh": [{"key": "e8030000", "value": "05000000"}],
    "cpus": [{"key": "01000000", "value": "c0000000"}],
    "xsks": [{"key": "00000000", "value": "03000000"}],
    "rb": [],
}}


def test_state_round_trip():
    """dump_state(load_state(x)) == x for a document covering every map kind."""
    maps = _state_maps()
    load_state(maps, STATE)
    assert dump_state(maps) == STATE
    assert maps["aom"].lookup(u32(1)) is maps["inner"]
    assert maps["pca"].lookup(u32(0), cpu=1) == u32(2)
    assert maps["dev"].redirect_target(1) == 4


def test_state_from_file(tmp_path):
    """load_state reads a JSON file given by path."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps(STATE))
    maps = _state_maps()
    load_state(maps, path)
    assert dump_state(maps) == STATE


def test_state_dump_lists_nonzero_array_entries():
    """dump_state lists the non-zero array indices only (read, written or not), and sorts
    hash keys."""
    maps = {"a": mk("array", max_entries=3), "p": mk("percpu_array", max_entries=3),
            "h": mk("hash")}
    maps["a"].update(u32(2), u32(9))
    maps["a"].update(u32(1), u32(0))
    maps["a"].lookup(u32(0))
    maps["p"].update(u32(1), u32(3), cpu=0)
    maps["h"].update(u32(2), u32(1))
    maps["h"].update(u32(1), u32(1))
    doc = dump_state(maps)["maps"]
    assert doc["a"] == [{"key": "02000000", "value": "09000000"}]
    assert [e["key"] for e in doc["p"]] == ["01000000"]
    assert [e["key"] for e in doc["h"]] == ["01000000", "02000000"]


def test_state_dump_of_a_huge_array_follows_the_entries_used():
    """A 2^25-entry array dumps its three written entries without touching the others."""
    m = mk("array", max_entries=1 << 25)
    for i in (5, 1 << 24, (1 << 25) - 1):
        m.update(u32(i), u32(i & 0xFF or 1))
    assert [e["key"] for e in dump_state({"m": m})["maps"]["m"]] == [
        u32(5).hex(), u32(1 << 24).hex(), u32((1 << 25) - 1).hex()]
    assert len(m._slots) == 3


def test_state_load_replaces_contents():
    """load_state replaces a named map's contents: old hash keys go, arrays are zeroed."""
    maps = {"a": mk("array", max_entries=2), "h": mk("hash")}
    maps["a"].update(u32(1), u32(5))
    held = maps["a"].lookup(u32(1))
    maps["h"].update(u32(7), u32(7))
    load_state(maps, {"maps": {"a": [{"key": "00000000", "value": "01000000"}],
                               "h": [{"key": "01000000", "value": "01000000"}]}})
    assert held == u32(0) and held is maps["a"].lookup(u32(1))
    assert maps["h"].lookup(u32(7)) is None


def test_state_load_resolves_programs():
    """With programs given, prog_array entries hold the program objects."""
    maps = {"p": mk("prog_array")}
    prog = object()
    load_state(maps, {"maps": {"p": [{"key": "00000000", "prog": "f"}]}}, programs={"f": prog})
    assert maps["p"].lookup(u32(0)) is prog


def test_state_not_json(tmp_path):
    """A file that is not JSON raises MapStateError naming the file and the position."""
    path = tmp_path / "bad.json"
    path.write_text("{oops")
    with pytest.raises(MapStateError, match=r"bad\.json: not JSON: .* at line 1 column 2"):
        load_state({}, path)


def test_state_missing_file(tmp_path):
    """A missing state file raises MapStateError naming it."""
    with pytest.raises(MapStateError, match=r"nope\.json: cannot read"):
        load_state({}, tmp_path / "nope.json")


@pytest.mark.parametrize("doc, message", [
    ({"mapz": {}}, r"<state>: expected an object with a \"maps\" object"),
    ({"maps": {"zz": []}}, r"<state>: map 'zz': no such map \(have: a, h, p, pc\)"),
    ({"maps": {"h": {}}}, r"map 'h': expected a list of entries, got dict"),
    ({"maps": {"h": [{"key": "0100zz00", "value": "00000000"}]}},
     r"map 'h', key 0100zz00: key '0100zz00' is not hex"),
    ({"maps": {"h": [{"key": "010000", "value": "00000000"}]}},
     r"map 'h', key 010000: key is 3 bytes, expected 4"),
    ({"maps": {"h": [{"key": "01000000", "value": "0000"}]}},
     r"map 'h', key 01000000: value is 2 bytes, expected 4"),
    ({"maps": {"h": [{"key": "01000000", "value": 5}]}},
     r"map 'h', key 01000000: value must be a hex string, got 5"),
    ({"maps": {"h": [{"key": "01000000"}]}}, r"map 'h', key 01000000: missing \"value\""),
    ({"maps": {"h": [{"key": "01000000", "value": "00000000", "x": 1}]}},
     r"map 'h', key 01000000: unexpected field 'x'"),
    ({"maps": {"h": [{"key": "01000000", "value": "00000000"},
                     {"key": "01000000", "value": "00000000"}]}},
     r"map 'h', key 01000000: duplicate key"),
    ({"maps": {"h": [{"key": f"0{i}000000", "value": "00000000"} for i in range(5)]}},
     r"map 'h': 5 entries exceed max_entries 4"),
    ({"maps": {"pc": [{"key": "01000000", "values": ["00000000"]}]}},
     r"map 'pc', key 01000000: \"values\" must list one value per CPU: got 1, expected 2"),
    ({"maps": {"pc": [{"key": "01000000", "values": ["00000000", "zz"]}]}},
     r"map 'pc', key 01000000, cpu 1: value 'zz' is not hex"),
    ({"maps": {"a": [{"key": "00000000", "value": "01000000"}]}},
     r"map 'a', key 00000000: unexpected field 'value'"),
    ({"maps": {"a": [{"key": "00000000", "inner": "ghost"}]}},
     r"map 'a', key 00000000: inner map 'ghost' does not exist"),
    ({"maps": {"p": [{"key": "00000000", "prog": ""}]}},
     r"map 'p', key 00000000: \"prog\" must be a program name"),
    ({"maps": {"h": ["x"]}}, r"map 'h', entry 0: expected an object with \"key\""),
])
def test_state_malformed(doc, message):
    """Malformed state raises MapStateError naming the source, map and key in one line."""
    maps = {"a": mk("array_of_maps"), "h": mk("hash"), "pc": mk("percpu_hash", num_cpus=2),
            "p": mk("prog_array")}
    with pytest.raises(MapStateError, match=message):
        load_state(maps, doc)


def test_state_malformed_leaves_maps_unchanged():
    """A document that fails validation changes no map."""
    maps = {"h": mk("hash")}
    maps["h"].update(u32(1), u32(1))
    with pytest.raises(MapStateError):
        load_state(maps, {"maps": {"h": [{"key": "02000000", "value": "bad"}]}})
    assert maps["h"].lookup(u32(1)) == u32(1)


def test_state_refused_update_names_errno(tmp_path):
    """An entry the map refuses raises MapStateError with the file, map, key and errno."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"maps": {"c": [{"key": "00000000", "value": "00500000"}]}}))
    with pytest.raises(MapStateError,
                       match=r"s\.json: map 'c', key 00000000: update failed with -EOVERFLOW"):
        load_state({"c": mk("cpumap")}, path)


def test_state_ringbuf_entries_refused():
    """A ring buffer in a state document must have no entries."""
    with pytest.raises(MapStateError, match=r"map 'rb': a ringbuf map has no entries, got 1"):
        load_state({"rb": mk("ringbuf", key_size=0, value_size=0, max_entries=4096)},
                   {"maps": {"rb": [{"key": "", "value": ""}]}})


# --------------------------------------------------------------- HASH vs dict model
ops = st.lists(st.one_of(
    st.tuples(st.just("update"), st.integers(0, 7), st.integers(0, 255),
              st.sampled_from([0, 1, 2, 3, 4, 5, 6, 8])),
    st.tuples(st.just("delete"), st.integers(0, 7), st.just(0), st.just(0)),
    st.tuples(st.just("lookup"), st.integers(0, 7), st.just(0), st.just(0)),
), max_size=60)


@settings(max_examples=examples(200), deadline=None)
@given(ops)
def test_hash_matches_dict_model(seq):
    """HASH agrees with a dict model of the kernel rules under random update/delete/lookup."""
    m = mk("hash", max_entries=4)
    assert isinstance(m, HashMap) and not isinstance(m, LruHashMap)
    model: dict[bytes, bytes] = {}
    for op, k, v, flags in seq:
        key, value = u32(k), u32(v)
        if op == "update":
            if flags not in (BPF_ANY, BPF_NOEXIST, BPF_EXIST):
                want = -EINVAL
            elif key in model and flags == BPF_NOEXIST:
                want = -EEXIST
            elif key not in model and flags == BPF_EXIST:
                want = -ENOENT
            elif key not in model and len(model) >= 4:
                want = -E2BIG
            else:
                want = 0
                model[key] = value
            assert m.update(key, value, flags) == want
        elif op == "delete":
            assert m.delete(key) == (0 if model.pop(key, None) is not None else -ENOENT)
        else:
            got = m.lookup(key)
            assert (None if got is None else bytes(got)) == model.get(key)
    assert {k: bytes(v) for k, v in m.items()} == model
    assert len(m) == len(model)


def test_array_of_maps_is_fd_array():
    """Array of maps is an index-keyed map in the JSON dump."""
    assert ArrayOfMaps.indexed and ArrayOfMaps.value_form == "inner"
