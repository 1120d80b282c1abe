"""XDP context, frame layout and the adjust helpers' limits (net/core/filter.c, test_run.c).

The frame is 4096 bytes: 256 headroom, the packet, and 320 bytes reserved for
skb_shared_info, so a packet may grow to 3520 bytes; data may move down to
data_hard_start + 40 (sizeof(struct xdp_frame)); at least 14 bytes (ETH_HLEN) must remain.
"""

from __future__ import annotations

import errno

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.errors import VmError
from ebpf.helpers.core import HelperEnv
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef
from ebpf.vm.machine import Vm
from ebpf.vm.xdp import XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_REDIRECT, XdpBuff, run_xdp

PKT = bytes(range(64))


def prog(text: str) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef("x", "xdp", "xdp", insns, [], {}, [])
    p.functions = [Function("x", 0, p.num_slots, "xdp")]
    return p


def xdp(text: str, packet: bytes = PKT, maps: list | None = None, **kw):
    env = kw.pop("env", None)
    return Vm(maps or [], prog(text), env=env).run_xdp(packet, **kw)


def signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def helper_ret(helper: int, arg: int, packet: bytes = PKT):
    """Run ``r0 = helper(ctx, arg)`` and return (signed r0, result)."""
    res = xdp(f"mov %r2, {arg}\ncall {helper}\nexit", packet)
    return signed(res.verdict), res


# --- context ------------------------------------------------------------------------------

def test_ctx_data_pointers():
    """data_end - data is the packet length and data_meta == data without metadata."""
    res = xdp("ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nldxw %r4, [%r1+8]\nmov %r0, %r3\n"
              "sub %r0, %r2\nsub %r4, %r2\nor %r0, %r4\nexit")
    assert res.verdict == 64


def test_ctx_ifindex_and_queue():
    """ingress_ifindex and rx_queue_index read back what run_xdp was given."""
    assert xdp("ldxw %r0, [%r1+12]\nexit", ingress_ifindex=7).verdict == 7
    assert xdp("ldxw %r0, [%r1+16]\nexit", rx_queue=3).verdict == 3


def test_ctx_default_ifindex_is_loopback():
    """Like test_run's default, the packet arrives on ifindex 1, queue 0."""
    assert xdp("ldxw %r0, [%r1+12]\nldxw %r2, [%r1+16]\nor %r0, %r2\nexit").verdict == 1


def test_ctx_narrow_load_refused():
    """xdp_md fields may only be read as aligned 4-byte words."""
    with pytest.raises(VmError, match="insn 0.*only aligned 4-byte loads"):
        xdp("ldxh %r0, [%r1+0]\nexit")


def test_ctx_write_refused():
    """XDP programs cannot write the context."""
    with pytest.raises(VmError, match="insn 0.*context is read-only"):
        xdp("stw [%r1+12], 1\nexit")


def test_packet_write_visible_in_output():
    """A store into the packet shows up in packet_out."""
    res = xdp("ldxw %r2, [%r1+0]\nstb [%r2+0], 0xaa\nmov %r0, 2\nexit")
    assert res.verdict == XDP_PASS
    assert res.packet_out == b"\xaa" + PKT[1:]


def test_drop_still_returns_modified_packet():
    """test_run copies the data out whatever the verdict, DROP included."""
    res = xdp("ldxw %r2, [%r1+0]\nstb [%r2+1], 0xbb\nmov %r0, 1\nexit")
    assert res.verdict == XDP_DROP
    assert res.packet_out[:2] == b"\x00\xbb"


def test_unknown_verdict_reported_as_is_truncated_to_u32():
    """r0 is reported as a u32, even when it is no XDP action."""
    res = xdp("lddw %r0, 0x100000007\nexit")
    assert res.verdict == 7
    assert res.verdict_name == "unknown(7)"


def test_packet_length_limits():
    """Fewer than 14 bytes are refused; past 3520 bytes the rest goes into fragments."""
    with pytest.raises(VmError, match="shorter than ETH_HLEN"):
        xdp("mov %r0, 2\nexit", bytes(13))
    assert xdp("mov %r0, 2\nexit", bytes(3520)).packet_out == bytes(3520)
    # data_end - data is what the program sees: the linear part only
    res = xdp("ldxw %r2, [%r1+4]\nldxw %r3, [%r1+0]\nmov %r0, %r2\nsub %r0, %r3\nexit",
              bytes(3521))
    assert res.verdict == 3520 and res.packet_out == bytes(3521)


# --- adjust_head ----------------------------------------------------------------------------

def test_adjust_head_grow_limit():
    """data may move down to hard_start + 40: -216 works, -217 is -EINVAL."""
    ret, res = helper_ret(44, -216)
    assert ret == 0 and len(res.packet_out) == 64 + 216
    assert res.packet_out[:216] == bytes(216) and res.packet_out[216:] == PKT
    ret, res = helper_ret(44, -217)
    assert ret == -errno.EINVAL and res.packet_out == PKT


def test_adjust_head_shrink_limit():
    """At least ETH_HLEN bytes must remain: +50 of 64 works, +51 fails."""
    ret, res = helper_ret(44, 50)
    assert ret == 0 and res.packet_out == PKT[50:]
    assert helper_ret(44, 51)[0] == -errno.EINVAL


def test_adjust_head_moves_metadata():
    """Metadata moves with data (memmove); the grown head keeps the old bytes."""
    res = xdp("mov %r0, 0\nmov %r2, -4\ncall 44\nexit", meta=b"META")
    assert res.verdict == 0
    # meta now at data-4, and data's first 4 bytes are where meta used to be
    assert res.meta_len == 4 and res.packet_out == b"META" + b"META" + PKT


def test_packet_pointers_after_adjust_head():
    """After adjust_head the new data pointer reads the new first byte."""
    res = xdp("mov %r6, %r1\nmov %r2, 2\ncall 44\nldxw %r2, [%r6+0]\nldxb %r0, [%r2+0]\nexit")
    assert res.verdict == 2


# --- adjust_meta ----------------------------------------------------------------------------

def test_adjust_meta_output_includes_metadata():
    """Metadata is copied out in front of the packet, as test_run's data_out does."""
    res = xdp("""
mov %r6, %r1
mov %r2, -8
call 54
ldxw %r2, [%r6+8]
ldxw %r3, [%r6+0]
mov %r4, %r2
add %r4, 8
jgt %r4, %r3, +1
stdw [%r2+0], 0x11223344
mov %r0, 1
exit
""")
    assert res.verdict == XDP_DROP
    assert res.meta_len == 8
    assert res.packet_out == bytes([0x44, 0x33, 0x22, 0x11]) + bytes(4) + PKT
    assert res.packet == PKT


def test_adjust_meta_alignment_and_limits():
    """-2 is -EACCES (not 4-byte aligned); -216 fits; -220 passes hard_start + 40."""
    assert helper_ret(54, -2)[0] == -errno.EACCES
    assert helper_ret(54, -216)[0] == 0
    assert helper_ret(54, -220)[0] == -errno.EINVAL
    assert helper_ret(54, 4)[0] == -errno.EINVAL  # meta above data


def test_adjust_meta_old_32_byte_limit():
    """With metalen_max = 32 (kernels before 6.3) 36 bytes are -EACCES."""
    res = xdp("mov %r2, -36\ncall 54\nexit", env=HelperEnv(metalen_max=32))
    assert signed(res.verdict) == -errno.EACCES


# --- adjust_tail ----------------------------------------------------------------------------

def test_adjust_tail_grow_limit_and_zero_fill():
    """A 64-byte packet grows to 3520 bytes at most; new bytes are zero."""
    ret, res = helper_ret(65, 3456)
    assert ret == 0 and res.packet_out == PKT + bytes(3456)
    assert helper_ret(65, 3457)[0] == -errno.EINVAL


def test_adjust_tail_shrink_limit():
    """The packet may shrink to 14 bytes but not below."""
    ret, res = helper_ret(65, -50)
    assert ret == 0 and res.packet_out == PKT[:14]
    assert helper_ret(65, -51)[0] == -errno.EINVAL


def test_read_past_shrunk_tail_faults():
    """After shrinking, the old tail is out of bounds."""
    with pytest.raises(VmError, match=r"insn 4: out of bounds packet read.*data\+20"):
        xdp("mov %r6, %r1\nmov %r2, -44\ncall 65\nldxw %r2, [%r6+0]\nldxb %r0, [%r2+20]\n"
            "exit")


def test_xdp_buff_adjust_directly():
    """XdpBuff keeps data_meta/data/data_end consistent through adjustments."""
    buff = XdpBuff(bytes(100))
    assert (buff.data_meta, buff.data, buff.data_end, buff.hard_end) == (256, 256, 356, 3776)
    assert buff.adjust_meta(-8) == 0 and buff.metalen == 8
    assert buff.adjust_head(-16) == 0
    assert (buff.data_meta, buff.data) == (232, 240)
    assert buff.adjust_tail(-86) == 0 and buff.buff_len() == 30


# --- buffer access helpers ------------------------------------------------------------------

def test_xdp_load_and_store_bytes():
    """xdp_load_bytes copies out, xdp_store_bytes copies in; past the end -EINVAL."""
    res = xdp("""
mov %r6, %r1
mov %r2, 4
mov %r3, %r10
add %r3, -8
mov %r4, 4
call 189
mov %r1, %r6
mov %r2, 0
mov %r3, %r10
add %r3, -8
mov %r4, 4
call 190
mov %r1, %r6
mov %r2, 62
mov %r3, %r10
add %r3, -8
mov %r4, 4
call 189
exit
""")
    assert signed(res.verdict) == -errno.EINVAL
    assert res.packet_out == PKT[4:8] + PKT[4:]


def test_xdp_get_buff_len():
    """xdp_get_buff_len is data_end - data."""
    assert xdp("call 188\nexit").verdict == 64


# --- redirect -------------------------------------------------------------------------------

def test_redirect_ifindex():
    """bpf_redirect(5, 0) returns XDP_REDIRECT and records ifindex 5."""
    res = xdp("mov %r1, 5\nmov %r2, 0\ncall 23\nexit")
    assert res.verdict == XDP_REDIRECT
    assert res.redirect.kind == "ifindex" and res.redirect.ifindex == 5


def test_redirect_with_flags_aborts():
    """Any flag makes bpf_redirect return XDP_ABORTED."""
    res = xdp("mov %r1, 5\nmov %r2, 1\ncall 23\nexit")
    assert res.verdict == XDP_ABORTED and res.redirect is None


def _devmap_vm(entries: dict[int, int], text: str) -> Vm:
    devmap = MapDef("tx_ports", MAP_TYPE_IDS["devmap"], 4, 4, 8)
    vm = Vm([devmap], prog(text))
    for key, ifindex in entries.items():
        assert vm.maps[0].update(key.to_bytes(4, "little"), ifindex.to_bytes(4, "little")) == 0
    return vm


def test_redirect_map_hit():
    """A devmap entry gives XDP_REDIRECT with the stored ifindex."""
    vm = _devmap_vm({3: 9}, "lddw %r1, map_idx 0\nmov %r2, 3\nmov %r3, 0\ncall 51\nexit")
    res = run_xdp(vm, PKT)
    assert res.verdict == XDP_REDIRECT
    assert (res.redirect.kind, res.redirect.map, res.redirect.key, res.redirect.ifindex) == \
        ("map", "tx_ports", 3, 9)


def test_redirect_map_miss_returns_flags_action():
    """On a miss the low two flag bits are the verdict (here XDP_PASS)."""
    vm = _devmap_vm({}, "lddw %r1, map_idx 0\nmov %r2, 3\nmov %r3, 2\ncall 51\nexit")
    assert run_xdp(vm, PKT).verdict == XDP_PASS


def test_redirect_map_bad_flags_abort():
    """Flags outside the action bits and the devmap flags give XDP_ABORTED."""
    vm = _devmap_vm({3: 9}, "lddw %r1, map_idx 0\nmov %r2, 3\nmov %r3, 0x20\ncall 51\nexit")
    assert run_xdp(vm, PKT).verdict == XDP_ABORTED


def test_redirect_map_broadcast():
    """BPF_F_BROADCAST redirects to the whole map even without an entry at the key."""
    vm = _devmap_vm({}, "lddw %r1, map_idx 0\nmov %r2, 0\nmov %r3, 8\ncall 51\nexit")
    res = run_xdp(vm, PKT)
    assert res.verdict == XDP_REDIRECT and res.redirect.kind == "broadcast"


def test_jumbo_frame_split_into_fragments():
    """A 9000-byte frame is 3520 linear bytes plus 4096- and 1384-byte fragments."""
    from ebpf.vm.xdp import XdpBuff

    packet = bytes(range(256)) * 35 + bytes(40)
    buff = XdpBuff(packet)
    assert buff.data_end - buff.data == 3520
    assert [len(f) for f in buff.frags] == [4096, 1384]
    assert buff.buff_len() == len(packet)
    assert buff.output() == packet
    assert buff.read_bytes(3518, 4) == packet[3518:3522]


def test_fragment_tail_shrink_and_grow():
    """adjust_tail trims fragments from the end, then the linear part; growth stays in the
    last fragment's page."""
    from ebpf.vm.xdp import XdpBuff

    packet = bytes(9000)
    buff = XdpBuff(packet)
    assert buff.adjust_tail(-1384 - 100) == 0  # frees the last fragment, trims the first
    assert [len(f) for f in buff.frags] == [3996]
    assert buff.adjust_tail(100) == 0 and [len(f) for f in buff.frags] == [4096]
    assert buff.adjust_tail(1) < 0  # past the fragment's page
    assert buff.adjust_tail(-4096 - 20) == 0  # all fragments gone, 20 bytes off the linear
    assert buff.frags == [] and buff.data_end - buff.data == 3500
    assert buff.adjust_tail(-(3500 - 13)) < 0  # fewer than ETH_HLEN bytes would remain


def test_store_bytes_across_fragment_boundary():
    """xdp_store_bytes-style writes straddling linear part and fragment land in both."""
    from ebpf.vm.xdp import XdpBuff

    buff = XdpBuff(bytes(5000))
    buff.write_bytes(3518, b"\x01\x02\x03\x04")
    out = buff.output()
    assert out[3518:3522] == b"\x01\x02\x03\x04" and len(out) == 5000


def test_vm_refuses_a_tc_program(tmp_path):
    """run_xdp on a sched_cls program: VmError naming the type, not an XDP verdict."""
    from ebpf.errors import VmError
    from ebpf.loader.elf import load
    from ebpf.vm.machine import Vm
    from tests.conftest import compile_bpf
    from tests.mixed_sections import MIXED_SOURCE

    obj = load(compile_bpf(tmp_path, MIXED_SOURCE, "mixed"))
    vm = Vm(obj, obj.get_program("tc_classify"))
    with pytest.raises(VmError, match="sched_cls program .* not XDP"):
        vm.run_xdp(bytes(64))
