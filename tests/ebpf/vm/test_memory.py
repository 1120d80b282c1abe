"""The memory model: tagged regions, bounds checks, faults that name the instruction."""

from __future__ import annotations

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.errors import VmError
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm
from ebpf.vm.memory import REGION_STRIDE, Memory, RegionKind

BPF_F_RDONLY_PROG = 1 << 7


def prog(text: str) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef("t", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("t", 0, p.num_slots, "xdp")]
    return p


# --- Memory on its own --------------------------------------------------------------------

def test_regions_get_distinct_separated_bases():
    """Each region starts at least a stride after the previous one."""
    mem = Memory()
    a = mem.add(RegionKind.MEM, "a", bytearray(16))
    b = mem.add(RegionKind.MEM, "b", bytearray(16))
    assert b.base - a.base >= REGION_STRIDE
    assert mem.find(a.base + 15) is a and mem.find(a.base + 16) is None


def test_load_store_little_endian():
    """Stores and loads are little-endian and truncate to the access size."""
    mem = Memory()
    r = mem.add(RegionKind.MEM, "m", bytearray(8))
    mem.store(r.base, 4, 0x1_1223_3445)
    assert bytes(r.buf[:4]) == bytes([0x45, 0x34, 0x23, 0x12])
    assert mem.load(r.base + 1, 2) == 0x2334


def test_out_of_bounds_read_describes_region():
    """A read past the end names the region and the valid range."""
    mem = Memory()
    r = mem.add(RegionKind.MEM, "m", bytearray(8))
    with pytest.raises(VmError, match=r"out of bounds memory read of 4 bytes at m\+6"):
        mem.load(r.base + 6, 4)


def test_read_just_below_region_is_out_of_bounds_of_it():
    """An address a few bytes below a region is reported against that region."""
    mem = Memory()
    mem.add(RegionKind.MEM, "a", bytearray(8))
    s = mem.add(RegionKind.STACK, "stack", bytearray(512), origin=512)
    with pytest.raises(VmError, match="out of bounds stack read of 8 bytes at stack fp-520"):
        mem.load(s.base - 8, 8)


def test_wild_and_null_pointers():
    """Addresses far from every region are wild; small ones are NULL dereferences."""
    mem = Memory()
    mem.add(RegionKind.MEM, "m", bytearray(8))
    with pytest.raises(VmError, match="null pointer dereference"):
        mem.load(8, 1)
    with pytest.raises(VmError, match="not a pointer into any memory region"):
        mem.load(0x7000_0000_0000_0000, 1)


def test_readonly_region_refuses_writes():
    """A read-only region can be read but not written."""
    mem = Memory()
    r = mem.add(RegionKind.MAP_VALUE, "ro", bytearray(b"abcd"), readonly=True, map_name="ro")
    assert mem.load(r.base, 1) == ord("a")
    with pytest.raises(VmError, match="write to read-only map 'ro' value\\+0"):
        mem.store(r.base, 1, 0)


def test_map_value_region_is_stable_per_buffer():
    """The same bytearray always maps to the same address; another gets a new one."""
    mem = Memory()
    buf, other = bytearray(8), bytearray(8)
    a = mem.map_value(buf, "m", b"k")
    assert mem.map_value(buf, "m", b"k").base == a.base
    assert mem.map_value(other, "m", b"j").base != a.base


def test_accessible_window_is_enforced():
    """Bytes of the buffer outside [lo, hi) are not accessible."""
    mem = Memory()
    r = mem.add(RegionKind.PACKET, "packet", bytearray(64), lo=16, hi=32, origin=16)
    assert mem.load(r.base + 16, 8) == 0
    with pytest.raises(VmError, match="packet read of 1 bytes at packet data-1"):
        mem.load(r.base + 15, 1)
    with pytest.raises(VmError, match=r"packet data\+16"):
        mem.load(r.base + 32, 1)


# --- faults through the VM ----------------------------------------------------------------

def test_packet_read_past_data_end_faults_with_slot():
    """Reading beyond data_end (no bounds check) faults at that instruction."""
    p = prog("ldxw %r2, [%r1+0]\nmov %r0, 2\nmov %r3, 0\nldxw %r0, [%r2+60]\nexit")
    with pytest.raises(VmError, match=r"insn 3: out of bounds packet read of 4 bytes at "
                                      r"packet data\+60"):
        Vm([], p).run_xdp(bytes(60))


def test_write_to_rodata_faults():
    """A store into .rodata global data is refused with the slot."""
    rodata = MapDef("p.rodata", MAP_TYPE_IDS["array"], 4, 8, 1, flags=BPF_F_RDONLY_PROG,
                    section=".rodata", initial=b"\x07" + bytes(7))
    p = prog("lddw %r1, map_idx_value 0, 0\nldxb %r0, [%r1+0]\nstb [%r1+0], 1\nexit")
    with pytest.raises(VmError, match=r"insn 3: write to read-only map 'p.rodata' value\+0"):
        Vm([rodata], p).run()


def test_rodata_is_readable():
    """Loads from .rodata see the initial contents."""
    rodata = MapDef("p.rodata", MAP_TYPE_IDS["array"], 4, 8, 1, flags=BPF_F_RDONLY_PROG,
                    section=".rodata", initial=b"\x07\x00\x00\x00\x2a")
    p = prog("lddw %r1, map_idx_value 0, 4\nldxb %r0, [%r1+0]\nexit")
    assert Vm([rodata], p).run().ret == 42


def test_wild_pointer_faults():
    """Dereferencing an integer that is no pointer faults."""
    p = prog("lddw %r1, 0x123456789\nmov %r0, 0\nldxb %r0, [%r1+0]\nexit")
    with pytest.raises(VmError, match=r"insn 3: invalid read of 1 bytes at 0x123456789"):
        Vm([], p).run()


def test_stack_below_frame_faults():
    """fp-520 is outside the 512-byte frame."""
    p = prog("mov %r0, 0\nstdw [%r10-520], 1\nexit")
    with pytest.raises(VmError, match="insn 1: out of bounds stack write of 8 bytes at "
                                      "stack fp-520"):
        Vm([], p).run()


def test_map_pointer_is_not_dereferenceable():
    """The struct bpf_map * an lddw gives cannot be read."""
    m = MapDef("m", MAP_TYPE_IDS["array"], 4, 4, 1)
    p = prog("lddw %r1, map_idx 0\nldxw %r0, [%r1+0]\nexit")
    with pytest.raises(VmError, match="insn 2: invalid read"):
        Vm([m], p).run()


def test_value_pointer_writes_reach_map_and_trace():
    """A store through a lookup pointer changes the map and is traced with its offset."""
    m = MapDef("counts", MAP_TYPE_IDS["array"], 4, 8, 2)
    p = prog("""
stw [%r10-4], 1
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx 0
call 1
jeq %r0, 0, +1
stw [%r0+4], 0x55
mov %r0, 0
exit
""")
    vm = Vm([m], p)
    t = vm.run()
    assert bytes(vm.maps[0].lookup((1).to_bytes(4, "little"))) == bytes(4) + b"\x55" + bytes(3)
    store = [op for op in t.map_ops if op.op == "store"]
    assert [(op.map, op.key, op.offset, op.size, op.slot) for op in store] == \
        [("counts", (1).to_bytes(4, "little"), 4, 4, 7)]


def test_atomic_on_packet_refused():
    """Atomic operations on packet memory are rejected, as the verifier does."""
    p = prog("ldxw %r2, [%r1+0]\nmov %r3, 1\nlock add32 [%r2+0], %r3\nmov %r0, 2\nexit")
    with pytest.raises(VmError, match="insn 2: atomic operation on packet memory"):
        Vm([], p).run_xdp(bytes(20))
