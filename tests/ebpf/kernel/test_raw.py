"""ebpf.kernel.raw against the running kernel: every corpus object loads through bpf(2)
without BTF and behaves as under libbpf; global data, fd slots, XDP frags, the injected
clock, verifier rejections, fd hygiene.

Tests that need bpf(2) skip with bpf_permitted()'s one-line reason when it is not permitted;
the layout and naming checks run everywhere.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

import ebpf.kernel.bridge
from ebpf.code.rewrite import CLOCK_MAP, clock_state, inject_clock
from ebpf.errors import KernelError
from ebpf.kernel.bridge import KernelObject
from ebpf.kernel.load import libbpf
from ebpf.kernel.raw import (
    ATTACH_TYPE_IDS,
    MapCreateAttr,
    MapElemAttr,
    ProgLoadAttr,
    RawKernelObject,
    kernel_name,
)
from ebpf.kernel.results import KernelCallError, KernelLoadError
from ebpf.loader.elf import load
from ebpf.maps.state import MapStateError
from tests.conftest import compile_bpf, corpus_object

needs_bpf = pytest.mark.kernel  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)
UAPI_HEADER = Path("/usr/include/linux/bpf.h")

XDP_DROP, XDP_PASS = 1, 2
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"

# Maps whose values hold bpf_ktime_get_ns readings: equal only up to the clock.
TIMED_MAPS = {"rate_limiter": {"buckets"}, "syn_flood": {"syn_counters"}}

SLOTS_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

/* Slot 1 starts out holding inner_b. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { [1] = &inner_b } };

int xdp_leaf(struct xdp_md *ctx);

/* Slot 2 starts out holding xdp_leaf. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jumps SEC(".maps") = { .values = { [2] = (void *)&xdp_leaf } };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} a_map_with_a_long_name SEC(".maps");

SEC("xdp")
int xdp_leaf(struct xdp_md *ctx)
{
	return 42;
}

/* inner_b[0] through outer[1]; 0 there tail-calls jumps[2] (xdp_leaf: 42). */
SEC("xdp")
int xdp_root(struct xdp_md *ctx)
{
	__u32 one = 1, zero = 0, *v;
	void *in = bpf_map_lookup_elem(&outer, &one);

	if (!in)
		return 99;
	v = bpf_map_lookup_elem(in, &zero);
	if (!v)
		return 98;
	if (*v == 0)
		bpf_tail_call(ctx, &jumps, 2);
	return *v;
}

SEC("xdp.frags")
int xdp_frags(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_plain(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""

CLOCK_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) __u64 stamp(void)
{
	return bpf_ktime_get_ns();
}

/* The low 32 bits of the clock when all four readings agree, else 1. */
SEC("xdp")
int xdp_clock(struct xdp_md *ctx)
{
	__u64 a = bpf_ktime_get_ns();
	__u64 b = stamp();
	__u64 c = bpf_ktime_get_boot_ns();
	__u64 d = bpf_ktime_get_coarse_ns();

	if (a == b && b == c && c == d)
		return (__u32)a;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
"""

BROKEN_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Reads the first packet byte without comparing against data_end. */
SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	return *(unsigned char *)(long)ctx->data;
}

char LICENSE[] SEC("license") = "GPL";
"""


def packets() -> list[bytes]:
    """A handful of frames every corpus program has a branch for."""
    ip = IP(src="10.0.0.1", dst="10.0.0.2")
    return [bytes(p) for p in (
        Ether(src=MAC_A, dst=MAC_B) / ip / UDP(sport=1234, dport=53) / (b"x" * 18),
        Ether(src=MAC_A, dst=MAC_B) / ip / TCP(sport=40000, dport=80, flags="S"),
        Ether(src=MAC_A, dst=MAC_B) / ip / TCP(sport=40000, dport=23, flags="A"),
        Ether(src=MAC_A, dst=MAC_B) / ip / ICMP(type=8) / (b"p" * 32),
        Ether(src=MAC_A, dst=MAC_B) / IP(src="192.168.1.9", dst="10.1.2.3", ttl=1) / UDP(),
        Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=7) / ip / UDP(dport=4789) / (b"v" * 8),
        Ether(src=MAC_A, dst=MAC_B) / IPv6(src="fd00::1", dst="fd00::2") / UDP(dport=53),
        Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.2"),
        Ether(src=MAC_A, dst=MAC_B, type=0x0800) / b"\x45",
    )]


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def data_symbol(path: os.PathLike[str], name: str) -> tuple[int, int]:
    """(offset in its section, size) of global variable ``name``, from .symtab."""
    with open(path, "rb") as f:
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if sym.name == name:
                return sym["st_value"], sym["st_size"]
    raise KeyError(name)


class _MapInfo(ctypes.Structure):
    """struct bpf_map_info up to name."""

    _fields_ = [(f, ctypes.c_uint32) for f in
                ("type", "id", "key_size", "value_size", "max_entries", "map_flags")] + [
                ("name", ctypes.c_char * 16)]


def kernel_map_info(fd: int) -> _MapInfo:
    info = _MapInfo()
    length = ctypes.c_uint32(ctypes.sizeof(info))
    assert libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(length)) == 0
    return info


def xlated_by_map_name(k: KernelObject, prog: str) -> list[str]:
    """The kernel's xlated program with each map reference (lddw src 1 / 2, imm = map id)
    written as the map's name, so that two loads of one object compare equal."""
    names = {kernel_map_info(k.map_fd(n)).id: n for n in k.map_names}
    raw = k.xlated_insns(prog)
    out = []
    for pos in range(0, len(raw), 8):
        slot = raw[pos: pos + 8]
        if slot[0] == 0x18 and slot[1] >> 4 in (1, 2):
            out.append(f"{slot[:4].hex()} map {names[int.from_bytes(slot[4:], 'little')]}")
        else:
            out.append(slot.hex())
    return out


# -- no kernel needed ------------------------------------------------------------------------
def test_kernel_name_truncates_and_replaces_like_libbpf():
    """Names go to the kernel as at most 15 characters of [A-Za-z0-9_.], others as '_'."""
    assert kernel_name("a_map_with_a_long_name") == "a_map_with_a_lo"
    assert kernel_name("globals.rodata") == "globals.rodata"
    assert kernel_name("outer-map:x") == "outer_map_x"
    assert kernel_name("caf\u00e9") == "caf_"


@pytest.mark.skipif(not UAPI_HEADER.exists() or not shutil.which("gcc"),
                    reason="needs gcc and /usr/include/linux/bpf.h")
def test_attr_layouts_match_the_uapi_header(tmp_path):
    """Every field offset of the three bpf_attr structs equals offsetof() in linux/bpf.h."""
    structs = (MapCreateAttr, MapElemAttr, ProgLoadAttr)
    fields = [(f[0], getattr(s, f[0]).offset) for s in structs for f in s._fields_]
    src = tmp_path / "off.c"
    src.write_text("#include <stdio.h>\n#include <stddef.h>\n#include <linux/bpf.h>\n"
                   "int main(void) {\n" + "".join(
                       f'printf("%zu\\n", offsetof(union bpf_attr, {name}));\n'
                       for name, _ in fields) + "return 0; }\n")
    exe = tmp_path / "off"
    subprocess.run(["gcc", str(src), "-o", str(exe)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True,
                                          check=True).stdout.split()]
    assert got == [offset for _, offset in fields]


@pytest.mark.skipif(not UAPI_HEADER.exists(), reason="needs /usr/include/linux/bpf.h")
def test_attach_type_ids_match_the_uapi_header():
    """ATTACH_TYPE_IDS numbers enum bpf_attach_type as the installed header does."""
    body = re.search(r"enum bpf_attach_type \{(.*?)\};", UAPI_HEADER.read_text(), re.S)
    assert body is not None
    names = re.findall(r"^\s*BPF_(\w+)", body.group(1), re.M)
    header = {n.lower(): i for i, n in enumerate(n for n in names if n != "ATTACH_TYPE")}
    header.pop("max_attach_type", None)
    assert {n: ATTACH_TYPE_IDS[n] for n in header if not n.startswith("_")} == header
    assert ATTACH_TYPE_IDS["xdp"] == 37


def test_denied_bpf_raises_with_the_reason(monkeypatch):
    """Where bpf(2) is denied, RawKernelObject raises KernelError with the reason."""
    monkeypatch.setattr(ebpf.kernel.bridge, "bpf_permitted", lambda: (False, "EPERM for the test"))
    with pytest.raises(KernelError, match=r"bpf\(2\) not usable: EPERM for the test$"):
        RawKernelObject(load(corpus_object("xdp_pass")))


# -- the corpus against libbpf ---------------------------------------------------------------
@needs_bpf
def test_corpus_loads_and_runs_as_under_libbpf(corpus_obj):
    """Each corpus object loads through bpf(2) and gives libbpf's names, verdicts, output
    bytes and final map contents for the same frames (clock-stamped maps aside)."""
    timed = TIMED_MAPS.get(corpus_obj.stem, set())
    with RawKernelObject(load(corpus_obj)) as raw, KernelObject(corpus_obj) as lib:
        assert raw.program_names == lib.program_names
        assert raw.map_names == lib.map_names
        for prog in raw.program_names:
            for i, packet in enumerate(packets()):
                mine, theirs = raw.test_run(packet, prog), lib.test_run(packet, prog)
                assert (mine.retval, mine.data_out, mine.meta_out) == (
                    theirs.retval, theirs.data_out, theirs.meta_out), f"{prog} packet {i}"
        names = [n for n in raw.map_names if n not in timed]
        assert raw.dump_state(names) == lib.dump_state(names)
        for name in raw.map_names:
            mine_info = kernel_map_info(raw.map_fd(name))
            theirs_info = kernel_map_info(lib.map_fd(name))
            assert (mine_info.name, mine_info.type, mine_info.key_size, mine_info.value_size,
                    mine_info.max_entries, mine_info.map_flags) == (
                theirs_info.name, theirs_info.type, theirs_info.key_size,
                theirs_info.value_size, theirs_info.max_entries, theirs_info.map_flags), name


@needs_bpf
@pytest.mark.parametrize("name", [p.stem for p in
                                  sorted((Path(__file__).parents[3] / "examples" / "xdp")
                                         .glob("*.c"))])
def test_corpus_verifier_output_equals_libbpf(name):
    """The kernel's xlated program and verified-insn count from our linked bytecode equal
    those from libbpf's, map references compared by map name."""
    path = corpus_object(name)
    with RawKernelObject(load(path)) as raw, KernelObject(path) as lib:
        for prog in raw.program_names:
            assert raw.prog_info(prog).verified_insns == lib.prog_info(prog).verified_insns
            assert xlated_by_map_name(raw, prog) == xlated_by_map_name(lib, prog), prog


# -- global data -----------------------------------------------------------------------------
@needs_bpf
def test_rodata_is_written_then_frozen():
    """globals: .rodata holds the ELF's bytes, is frozen (EPERM from user space), and
    load_state on it says to give it at construction; .bss starts at zero."""
    obj = load(corpus_object("globals"))
    rodata = obj.get_map("globals.rodata")
    with RawKernelObject(obj) as k:
        assert k.lookup("globals.rodata", u32(0)) == rodata.initial
        with pytest.raises(KernelCallError) as info:
            k.update("globals.rodata", u32(0), bytes(rodata.value_size))
        assert info.value.errno == 1  # EPERM: frozen
        with pytest.raises(MapStateError, match=r"frozen after load: give its state to "
                                              r"RawKernelObject\("):
            k.load_state({"maps": {"globals.rodata": []}})
        bss = obj.get_map("globals.bss")
        assert k.lookup("globals.bss", u32(0)) == bytes(bss.value_size)


@needs_bpf
def test_rodata_state_is_applied_before_the_freeze():
    """globals: a blocked port given through state= reaches .rodata before it is frozen and
    changes the verdict, as it does under libbpf."""
    path = corpus_object("globals")
    obj = load(path)
    offset, size = data_symbol(path, "cfg_blocked_port")
    rodata = bytearray(obj.get_map("globals.rodata").initial or b"")
    rodata[offset: offset + size] = (53).to_bytes(size, "little")
    state = {"maps": {"globals.rodata": [{"key": u32(0).hex(), "value": rodata.hex()}]}}
    dns = packets()[0]
    with RawKernelObject(obj) as k:
        assert k.test_run(dns).retval == XDP_PASS
    with RawKernelObject(obj, state=state) as k, KernelObject(path, state=state) as lib:
        assert k.dump_state(["globals.rodata"]) == state
        assert k.test_run(dns).retval == lib.test_run(dns).retval == XDP_DROP
        assert k.xlated_insns() != b""


# -- fd slots, program selection, frags ------------------------------------------------------
@needs_bpf
def test_map_in_map_and_prog_array_slots_from_the_object(tmp_path):
    """outer[1] = inner_b and jumps[2] = xdp_leaf, as the object initialises them (libbpf
    dumps the same); the program reads through outer and tail-calls through jumps."""
    path = compile_bpf(tmp_path, SLOTS_SOURCE, "slots")
    with RawKernelObject(load(path)) as k, KernelObject(path) as lib:
        expected = {"maps": {"outer": [{"key": u32(1).hex(), "inner": "inner_b"}],
                             "jumps": [{"key": u32(2).hex(), "prog": "xdp_leaf"}]}}
        assert k.dump_state(["outer", "jumps"]) == lib.dump_state(["outer", "jumps"]) \
            == expected
        packet = packets()[0]
        assert k.test_run(packet, "xdp_root").retval == 42
        k.update("inner_b", u32(0), u32(7))
        assert k.test_run(packet, "xdp_root").retval == 7
        k.load_state({"maps": {"outer": [{"key": u32(1).hex(), "inner": "inner_a"}],
                               "inner_a": [{"key": u32(i).hex(), "value": u32(5 + i).hex()}
                                           for i in range(4)]}})
        assert k.test_run(packet, "xdp_root").retval == 5
        info = kernel_map_info(k.map_fd("a_map_with_a_long_name"))
        assert info.name == b"a_map_with_a_lo"


@needs_bpf
def test_program_subset_leaves_other_slots_empty(tmp_path):
    """programs=[...] loads only those; a prog_array slot naming another program stays
    empty; an unknown name is refused before anything is created."""
    path = compile_bpf(tmp_path, SLOTS_SOURCE, "slots")
    obj = load(path)
    with RawKernelObject(obj, programs=["xdp_root"]) as k:
        assert k.program_names == ["xdp_root"]
        assert k.dump_state(["jumps"]) == {"maps": {"jumps": []}}
        assert k.test_run(packets()[0]).retval == 0  # the tail call falls through
    with pytest.raises(KernelError, match=r"no program named 'nope' \(have: "):
        RawKernelObject(obj, programs=["nope"])


@needs_bpf
def test_xdp_frags_section_sets_the_frags_flag(tmp_path):
    """A prog_array first used by a non-frags program takes xdp_plain but refuses
    xdp_frags (EINVAL): BPF_F_XDP_HAS_FRAGS is set from the section, as libbpf sets it."""
    path = compile_bpf(tmp_path, SLOTS_SOURCE, "slots")
    for k in (RawKernelObject(load(path)), KernelObject(path)):
        with k:
            k.update("jumps", u32(0), "xdp_plain")
            with pytest.raises(KernelCallError) as info:
                k.update("jumps", u32(0), "xdp_frags")
            assert info.value.errno == 22


# -- the injected clock ----------------------------------------------------------------------
@needs_bpf
def test_rate_limiter_reads_the_injected_clock():
    """rate_limiter after inject_clock: the kernel stores the clock map's value as last_ns
    and computes the credit from it (1 ms per packet, 100 ms burst)."""
    obj = inject_clock(load(corpus_object("rate_limiter")))
    t0 = 0x1122334455667788
    source = bytes.fromhex("0a000001")  # 10.0.0.1, the packets' source
    udp = packets()[0]
    with RawKernelObject(obj, state={"maps": clock_state(t0)}) as k:
        assert k.test_run(udp).retval == XDP_PASS
        bucket = k.lookup("buckets", source)
        assert bucket == u64(99_000_000) + u64(t0)
        k.load_state({"maps": clock_state(t0 + 500_000)})
        assert k.test_run(udp).retval == XDP_PASS
        entry = k.dump_state(["buckets"])["maps"]["buckets"]
        assert entry == [{"key": source.hex(),
                          "value": (u64(98_500_000) + u64(t0 + 500_000)).hex()}]
        assert k.dump_state([CLOCK_MAP])["maps"] == clock_state(t0 + 500_000)


@needs_bpf
def test_syn_flood_window_follows_the_clock_and_rodata():
    """syn_flood after inject_clock with syn_threshold 2 and window_ns 1000 set in .rodata:
    the third SYN in a window drops, a SYN 2000 ns later opens a new window."""
    path = corpus_object("syn_flood")
    obj = inject_clock(load(path))
    rodata = bytearray(obj.get_map("syn_floo.rodata").initial or b"")
    for name, value in (("syn_threshold", 2), ("window_ns", 1000)):
        offset, size = data_symbol(path, name)
        rodata[offset: offset + size] = value.to_bytes(size, "little")
    state = {"maps": {"syn_floo.rodata": [{"key": u32(0).hex(), "value": rodata.hex()}],
                      **clock_state(5000)}}
    syn = packets()[1]
    verdicts = []
    with RawKernelObject(obj, state=state) as k:
        for now in (5000, 5010, 5020, 7000):
            k.update(CLOCK_MAP, u32(0), u64(now))
            verdicts.append(k.test_run(syn).retval)
        window = k.lookup("syn_counters", bytes.fromhex("0a000001"))
    assert verdicts == [XDP_PASS, XDP_PASS, XDP_DROP, XDP_PASS]
    assert window == u64(1) + u64(7000)


@needs_bpf
def test_every_clock_helper_and_subprogram_reads_the_clock(tmp_path):
    """ktime_get_ns in main and in a sub-program, ktime_get_boot_ns and
    ktime_get_coarse_ns all read the clock map after inject_clock."""
    obj = inject_clock(load(compile_bpf(tmp_path, CLOCK_SOURCE, "clock")))
    assert len(obj.programs[0].functions) == 2
    with RawKernelObject(obj) as k:
        for now in (0xABCD_1234_5678, 77):
            k.update(CLOCK_MAP, u32(0), u64(now))
            assert k.test_run(packets()[0]).retval == now & 0xFFFFFFFF


# -- failures, logs, hygiene -----------------------------------------------------------------
@needs_bpf
def test_verifier_rejection_raises_one_line_with_the_log(tmp_path):
    """A rejected program raises KernelLoadError: one line naming the program and the
    verifier's last word (KernelObject's very message), the whole log (from the level-1
    retry) in .log."""
    path = compile_bpf(tmp_path, BROKEN_SOURCE, "broken")
    with pytest.raises(KernelLoadError, match=r"program 'xdp_unchecked' rejected by the "
                                              r"verifier: R1 offset is outside") as info:
        RawKernelObject(load(path))
    err = info.value
    assert "\n" not in str(err)
    assert str(err).startswith(f"{path}: ")
    assert "invalid access to packet" in err.log
    assert err.program == "xdp_unchecked"
    with pytest.raises(KernelLoadError) as theirs:
        KernelObject(path)
    assert str(err) == str(theirs.value)


@needs_bpf
def test_log_level_keeps_every_verifier_log():
    """log_level=1 keeps each loaded program's verifier log in .log under its name."""
    with RawKernelObject(load(corpus_object("tail_call")), log_level=1) as k:
        for name in k.program_names:
            assert f"prog '{name}': verifier log\n" in k.log
        assert "processed" in k.log
    with RawKernelObject(load(corpus_object("tail_call"))) as k:
        assert k.log == ""


@needs_bpf
def test_closed_object_refuses_work():
    """After close() every operation raises KernelError; close() twice is harmless."""
    k = RawKernelObject(load(corpus_object("xdp_pass")))
    assert repr(k).startswith("RawKernelObject(")
    k.close()
    k.close()
    assert k.closed
    with pytest.raises(KernelError, match="closed"):
        k.test_run(packets()[0])
    with pytest.raises(KernelError, match="closed"):
        k.map_fd("nope")


@needs_bpf
def test_no_fd_leaks(tmp_path):
    """Loads with slots, global data and templates, runs, dumps, failed loads and failed
    state all leave the process with the fds it had."""
    slots = load(compile_bpf(tmp_path, SLOTS_SOURCE, "slots"))
    broken = load(compile_bpf(tmp_path, BROKEN_SOURCE, "broken"))
    tail, globals_ = load(corpus_object("tail_call")), load(corpus_object("globals"))

    def cycle() -> None:
        with RawKernelObject(tail) as k:
            k.test_run(packets()[1], "xdp_dispatch")
            k.dump_state()
            k.prog_info("xdp_tcp")
            k.xlated_insns("xdp_tcp")
        with RawKernelObject(slots) as k:
            k.test_run(packets()[0], "xdp_root")
        with RawKernelObject(inject_clock(globals_)) as k:
            k.dump_state()
        with pytest.raises(KernelLoadError):
            RawKernelObject(broken)
        with pytest.raises(MapStateError):
            RawKernelObject(tail, state={"maps": {"nope": []}})
        with pytest.raises(MapStateError):
            RawKernelObject(globals_, state={"maps": {"globals.rodata": [
                {"key": u32(0).hex(), "value": "00"}]}})

    cycle()
    before = open_fds()
    for _ in range(3):
        cycle()
    assert open_fds() == before
