"""Bad objects: each gives one ElfError naming the file and the problem, never anything else."""

from __future__ import annotations

import struct

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf.errors import BtfError, EbpfError, ElfError
from ebpf.loader.elf import load, load_bytes
from tests.budget import examples
from tests.conftest import CORPUS_NAMES, compile_bpf, corpus_object


def section_header(data: bytes, name: str) -> dict:
    import io

    elf = ELFFile(io.BytesIO(data))
    for i, sec in enumerate(elf.iter_sections()):
        if sec.name == name:
            return {"index": i, "offset": sec["sh_offset"], "size": sec["sh_size"],
                    "hdr": elf["e_shoff"] + i * elf["e_shentsize"]}
    raise KeyError(name)


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


@pytest.fixture
def firewall() -> bytes:
    return corpus_object("firewall").read_bytes()


def test_not_elf(tmp_path):
    """A text file is 'not an ELF file'."""
    path = tmp_path / "notes.o"
    path.write_text("hello\n")
    with pytest.raises(ElfError, match=f"^{path}: not an ELF file$"):
        load(path)


def test_missing_file(tmp_path):
    """A missing file is named."""
    with pytest.raises(ElfError, match="nope.o: cannot read"):
        load(tmp_path / "nope.o")


@pytest.mark.parametrize("keep", [20, 64, 200, 0.5])
def test_truncated(firewall, keep):
    """A truncated object is a malformed-ELF error, not a crash."""
    n = int(len(firewall) * keep) if isinstance(keep, float) else keep
    with pytest.raises(ElfError, match="^fw.o: "):
        load_bytes(firewall[:n], "fw.o")


def test_wrong_machine(firewall):
    """An ELF for another machine is 'not a BPF object'."""
    data = patched(firewall, 18, struct.pack("<H", 62))  # e_machine = EM_X86_64
    with pytest.raises(ElfError, match="fw.o: not a BPF object \\(machine EM_X86_64\\)"):
        load_bytes(data, "fw.o")


def test_no_programs(tmp_path):
    """An object with maps but no programs says so."""
    path = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u32);
         __uint(max_entries, 1); } m SEC(".maps");
char LICENSE[] SEC("license") = "GPL";
""", name="empty")
    with pytest.raises(ElfError, match="empty.o: no BPF programs in the object"):
        load(path)


def test_relocation_outside_section(firewall):
    """A relocation whose offset lies past its section is reported with the offset."""
    rel = section_header(firewall, ".relxdp")
    data = patched(firewall, rel["offset"], struct.pack("<Q", 0x7FFF0))
    with pytest.raises(ElfError, match="fw.o: relocation at offset 0x7fff0 points outside "
                                       "section 'xdp'"):
        load_bytes(data, "fw.o")


def test_unknown_opcode(firewall):
    """An undefined opcode in a program section names the section, slot and opcode."""
    xdp = section_header(firewall, "xdp")
    data = patched(firewall, xdp["offset"] + 8, b"\xff")
    with pytest.raises(ElfError, match="fw.o: section 'xdp': insn 1: unknown opcode 0xff"):
        load_bytes(data, "fw.o")


def test_unknown_map_type(tmp_path):
    """A map type the kernel does not define is named with its number."""
    path = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, 99); __type(key, __u32); __type(value, __u32);
         __uint(max_entries, 1); } odd SEC(".maps");
SEC("xdp") int p(struct xdp_md *ctx) { __u32 k = 0; bpf_map_lookup_elem(&odd, &k);
                                       return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
""", name="odd")
    with pytest.raises(ElfError, match="odd.o: map 'odd': unknown map type 99"):
        load(path)


def test_malformed_btf_magic(firewall):
    """A .BTF section with a bad magic is a BtfError naming the section."""
    btf = section_header(firewall, ".BTF")
    data = patched(firewall, btf["offset"], b"\x00\x00")
    with pytest.raises(BtfError, match="fw.o: .BTF: bad magic 0x0000"):
        load_bytes(data, "fw.o")


def test_malformed_btf_kind(firewall):
    """A type with an undefined kind is reported with its offset."""
    btf = section_header(firewall, ".BTF")
    hdr_len = struct.unpack_from("<I", firewall, btf["offset"] + 4)[0]
    type_off = struct.unpack_from("<I", firewall, btf["offset"] + 8)[0]
    first_info = btf["offset"] + hdr_len + type_off + 4
    data = patched(firewall, first_info + 3, bytes([0x1F]))  # kind 31
    with pytest.raises(BtfError, match="bad BTF kind 31 at 0x"):
        load_bytes(data, "fw.o")


def test_btf_string_offset_out_of_range(firewall):
    """A name offset past the string section is caught."""
    btf = section_header(firewall, ".BTF")
    hdr_len = struct.unpack_from("<I", firewall, btf["offset"] + 4)[0]
    type_off = struct.unpack_from("<I", firewall, btf["offset"] + 8)[0]
    data = patched(firewall, btf["offset"] + hdr_len + type_off + 12,
                   struct.pack("<I", 0x7FFFFFF))  # second type's name_off
    with pytest.raises(BtfError, match="string offset 0x7ffffff outside"):
        load_bytes(data, "fw.o")


def test_newline_in_btf_name_keeps_error_one_line():
    """A newline written into a BTF name (found by the mutation test below: lpm_router's field
    'value' as 'va\\nue') is shown escaped: the error stays one line and names it intact."""
    data = corpus_object("lpm_router").read_bytes()
    assert data.count(b"\0value\0") >= 1
    mutant = data.replace(b"\0value\0", b"\0va\nue\0")
    with pytest.raises(ElfError) as info:
        load_bytes(mutant, "mutant.o")
    assert str(info.value) == ("mutant.o: map 'routes': unknown map definition field "
                               "'va\\nue'")


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(CORPUS_NAMES),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1,
                                                                            max_size=8)),
                      min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_mutated_objects_load_or_raise_own_error(name, edits, cut):
    """Mutated corpus objects either load or raise the package's error type, nothing else."""
    data = bytearray(corpus_object(name).read_bytes())
    for where, new in edits:
        at = int(where * len(data))
        data[at:at + len(new)] = new
    if cut is not None:
        data = data[: int(cut * len(data))]
    try:
        load_bytes(bytes(data), "mutant.o")
    except EbpfError as exc:
        assert str(exc).startswith("mutant.o"), str(exc)
        assert "\n" not in str(exc)


def test_value_size_beyond_the_kernel_limit_is_refused_before_allocation(tmp_path):
    """A map declaring 2^31-byte values (the kernel says E2BIG above KMALLOC_MAX_SIZE) is
    refused at load with the limit, without allocating the value."""
    path = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(key_size, 4);
         __uint(value_size, 0x80000000); __uint(max_entries, 1); } big SEC(".maps");
SEC("xdp") int p(struct xdp_md *ctx) { __u32 k = 0; bpf_map_lookup_elem(&big, &k);
                                       return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
""", name="big")
    with pytest.raises(ElfError, match="big.o: map 'big': value_size 2147483648 exceeds the "
                                       "kernel's limit 4194304"):
        load(path)


def test_key_size_beyond_the_bpf_stack_is_refused(tmp_path):
    """A hash map with a 4 KiB key (longer than MAX_BPF_STACK) is refused at load."""
    path = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 4096);
         __uint(value_size, 4); __uint(max_entries, 1); } wide SEC(".maps");
SEC("xdp") int p(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
""", name="wide")
    with pytest.raises(ElfError, match="wide.o: map 'wide': key_size 4096 exceeds the "
                                       "kernel's limit 512"):
        load(path)


def test_huge_bss_is_refused_before_its_zeros_are_allocated():
    """A `.bss` whose sh_size claims 2^62 bytes is one error naming the section, not a
    MemoryError from allocating its zeros."""
    data = corpus_object("globals").read_bytes()
    bss = section_header(data, ".bss")
    data = patched(data, bss["hdr"] + 32, struct.pack("<Q", 1 << 62))  # sh_size
    with pytest.raises(ElfError, match="g.o: map '.bss': value_size 4611686018427387904 "
                                       "exceeds the kernel's limit"):
        load_bytes(data, "g.o")
