"""Every ISA corner run twice: on the VM and as an XDP program in the kernel.

Each case is a small program in the assembler's syntax. A fixed prologue checks that the
packet holds 32 bytes, loads operand A from packet bytes 8..16 and operand B from 16..24
(so the verifier cannot fold them), the body computes into r0 (and may use r3-r5, r7-r9 and
the stack), and an epilogue stores r0 at packet offset 0 and returns XDP_PASS. The object is
assembled into bytecode by ebpf.code.asm, wrapped in an ELF by llvm-mc and loaded through libbpf;
the kernel's output packet must equal the VM's for every operand pair.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ebpf.code.asm import assemble
from ebpf.loader.elf import load
from ebpf.vm.machine import Vm

pytestmark = [
    pytest.mark.kernel,  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)
    pytest.mark.skipif(shutil.which("llvm-mc") is None, reason="llvm-mc not installed"),
]

PROLOGUE = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 32
jgt %r4, %r3, out
ldxdw %r6, [%r2+8]
ldxdw %r7, [%r2+16]
mov %r0, %r6
"""
EPILOGUE = """
stxdw [%r2+0], %r0
out:
mov %r0, 2
exit
"""

M64 = (1 << 64) - 1
EDGE = [0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x8000, 0xFFFF, 0x7FFFFFFF,
        0x80000000, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, M64,
        M64 - 1, 0xFFFFFFFF80000000, 0x123456789ABCDEF0]
PAIRS = [(a, b) for a in EDGE[::3] for b in EDGE[::2]] + [
    (0x8000000000000000, M64), (0x80000000, 0xFFFFFFFF), (5, 0), (M64, 0), (-7 & M64, 2),
    (7, -2 & M64), (-7 & M64, -2 & M64)]

ALU_OPS = ["add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "mod", "xor", "mov", "arsh"]
CASES: dict[str, str] = {}
for op in ALU_OPS:
    for width in ("", "32"):
        CASES[f"{op}{width}-reg"] = f"{op}{width} %r0, %r7"
        imm = {"div": "7", "mod": "7", "lsh": "13", "rsh": "13", "arsh": "13"}.get(op, "-3")
        if op in ("lsh", "rsh", "arsh") and not width:
            imm = "45"  # immediate shifts must be below the width (the verifier checks)
        CASES[f"{op}{width}-imm"] = f"{op}{width} %r0, {imm}"
for width in ("", "32"):
    CASES[f"neg{width}"] = f"neg{width} %r0"
    for op in ("sdiv", "smod"):
        CASES[f"{op}{width}-reg"] = f"{op}{width} %r0, %r7"
        CASES[f"{op}{width}-imm"] = f"{op}{width} %r0, -3"
for bits in (16, 32, 64):
    CASES[f"le{bits}"] = f"le{bits} %r0"
    CASES[f"be{bits}"] = f"be{bits} %r0"
    CASES[f"bswap{bits}"] = f"bswap{bits} %r0"
for name in ("movsx864", "movsx1664", "movsx3264", "movsx832", "movsx1632"):
    CASES[name] = f"{name} %r0, %r7"
CASES["lddw"] = "lddw %r0, 0x8000000000000001\nadd %r0, %r6"
CASES["ldxsb"] = "ldxsb %r0, [%r2+16]"
CASES["ldxsh"] = "ldxsh %r0, [%r2+17]"
CASES["ldxsw"] = "ldxsw %r0, [%r2+19]"
CASES["ldx-sizes"] = ("ldxb %r0, [%r2+9]\nldxh %r3, [%r2+10]\nadd %r0, %r3\n"
                      "ldxw %r3, [%r2+12]\nadd %r0, %r3")
CASES["st-imm"] = "stdw [%r10-8], -5\nsth [%r10-6], 0x1234\nldxdw %r0, [%r10-8]"
for cond in ("jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "jlt", "jle", "jslt", "jsle"):
    for width in ("", "32"):
        CASES[f"{cond}{width}-reg"] = (f"mov %r0, 1\n{cond}{width} %r6, %r7, +1\nmov %r0, 0")
        CASES[f"{cond}{width}-imm"] = (f"mov %r0, 1\n{cond}{width} %r6, -2, +1\nmov %r0, 0")
CASES["gotol"] = "mov %r0, 1\njeq %r6, 5, +1\nja32 +1\nmov %r0, 0"  # both paths reachable
for op in ("add", "or", "and", "xor"):
    for width, size in (("", "dw"), ("32", "w")):
        CASES[f"atomic-{op}{width}"] = (f"stx{size} [%r10-8], %r6\nlock {op}{width} [%r10-8], %r7\n"
                                        f"ldx{size} %r0, [%r10-8]")
        CASES[f"atomic-fetch-{op}{width}"] = (
            f"stx{size} [%r10-8], %r6\nmov %r3, %r7\nlock fetch {op}{width} [%r10-8], %r3\n"
            f"ldx{size} %r0, [%r10-8]\nlsh %r0, 1\nxor %r0, %r3")
for width, size in (("", "dw"), ("32", "w")):
    CASES[f"xchg{width}"] = (f"stx{size} [%r10-8], %r6\nmov %r3, %r7\nlock xchg{width} "
                             f"[%r10-8], %r3\nldx{size} %r0, [%r10-8]\nlsh %r0, 3\nadd %r0, %r3")
    CASES[f"cmpxchg{width}"] = (f"stx{size} [%r10-8], %r6\nmov %r0, %r7\nmov %r3, 99\n"
                                f"lock cmpxchg{width} [%r10-8], %r3\nldx{size} %r4, [%r10-8]\n"
                                f"lsh %r4, 5\nadd %r0, %r4")
CASES["cmpxchg-hit"] = ("stxdw [%r10-8], %r6\nmov %r0, %r6\nmov %r3, 99\n"
                        "lock cmpxchg [%r10-8], %r3\nldxdw %r4, [%r10-8]\nlsh %r4, 5\nadd %r0, %r4")


def elf_from_code(tmp_path: Path, name: str, code: bytes) -> Path:
    rows = "".join(f"\t.byte {','.join(str(b) for b in code[i:i + 8])}\n"
                   for i in range(0, len(code), 8))
    src = tmp_path / f"{name}.s"
    src.write_text(f'\t.section xdp,"ax",@progbits\n\t.globl prog\n\t.type prog,@function\n'
                   f'prog:\n{rows}\t.size prog, {len(code)}\n'
                   f'\t.section license,"aw",@progbits\n\t.asciz "GPL"\n')
    obj = tmp_path / f"{name}.o"
    subprocess.run(["llvm-mc", "-triple", "bpfel", "-filetype=obj", str(src), "-o", str(obj)],
                   check=True)
    return obj


@pytest.mark.parametrize("name", sorted(CASES))
def test_vm_equals_kernel(tmp_path, name):
    """The VM's output packet equals the kernel's for every operand pair."""
    from ebpf.kernel.bridge import KernelObject

    code = assemble(PROLOGUE + CASES[name] + EPILOGUE)
    path = elf_from_code(tmp_path, name.replace("-", "_"), code)
    obj = load(path)
    vm = Vm(obj, obj.get_program("prog"))
    with KernelObject(path) as kobj:
        for a, b in PAIRS:
            packet = bytes(8) + struct.pack("<QQ", a, b) + bytes(40)
            theirs = kobj.test_run(packet)
            mine = vm.run_xdp(packet)
            assert (mine.verdict, mine.packet_out) == (theirs.retval, theirs.data_out), (
                f"{name} a=0x{a:x} b=0x{b:x}: vm r0=0x{mine.packet_out[:8][::-1].hex()} "
                f"kernel r0=0x{theirs.data_out[:8][::-1].hex()}")


def test_division_by_constant_zero(tmp_path):
    """The verifier refuses a division by the constant 0; the VM gives 0 (the runtime rule)."""
    from ebpf.kernel.bridge import KernelObject
    from ebpf.kernel.results import KernelLoadError

    code = assemble(PROLOGUE + "div %r0, 0" + EPILOGUE)
    path = elf_from_code(tmp_path, "divzero", code)
    with pytest.raises(KernelLoadError, match="div by zero"):
        KernelObject(path)
    obj = load(path)
    out = Vm(obj, obj.get_program("prog")).run_xdp(bytes(8) + struct.pack("<Q", 5) + bytes(48))
    assert out.packet_out[:8] == bytes(8)


TAIL_CALL_LOOP = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64);
         __uint(max_entries, 1); } hits SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __type(key, __u32); __type(value, __u32);
         __uint(max_entries, 1); } self_table SEC(".maps");
SEC("xdp") int loop(struct xdp_md *ctx)
{
    __u32 k = 0;
    __u64 *n = bpf_map_lookup_elem(&hits, &k);
    if (n)
        *n += 1;
    bpf_tail_call(ctx, &self_table, 0);
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_tail_call_limit_matches_kernel(tmp_path):
    """A program tail-calling itself runs 1 + MAX_TAIL_CALL_CNT times on both sides."""
    from ebpf.kernel.bridge import KernelObject
    from ebpf.maps.state import dump_state, load_state
    from tests.conftest import compile_bpf

    path = compile_bpf(tmp_path, TAIL_CALL_LOOP, name="tailloop")
    state = {"maps": {"self_table": [{"key": "00000000", "prog": "loop"}]}}
    packet = bytes(64)
    with KernelObject(path) as kobj:
        kobj.load_state(state)
        assert kobj.test_run(packet).retval == 2
        kernel_hits = kobj.dump_state(["hits"])["maps"]["hits"]
    obj = load(path)
    vm = Vm(obj, obj.get_program("loop"))
    maps = {m.name: m for m in vm.maps}
    load_state(maps, state)
    assert vm.run_xdp(packet).verdict == 2
    vm_hits = dump_state(maps)["maps"]["hits"]
    assert vm_hits == kernel_hits
    assert int.from_bytes(bytes.fromhex(vm_hits[0]["value"]), "little") == 34
