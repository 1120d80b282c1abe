"""ebpf.analysis.packet_bounds: accepts and refuses exactly what the kernel verifier does.

The oracle is the running kernel (``offload.kernel_check.kernel_verdict``: libbpf through
``ebpf.kernel.load.open_unpinned``, nothing pinned or attached) on every corpus program,
the kernel-rejected programs of the tests, and hand-written programs of each case.
"""

from __future__ import annotations

import pytest

from ebpf.analysis.packet_bounds import check_packet_bounds
from ebpf.code.asm import assemble
from ebpf.loader.elf import load
from tests.conftest import CORPUS_NAMES, compile_bpf, corpus_object
from tests.ebpf.code.test_isa_kernel import elf_from_code
from tests.offload.test_kernel_check import UNCHECKED_SOURCE

START = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r0, 2
"""
# (program body after START, the verifier accepts it); r2 = data, r3 = data_end
CASES: dict[str, tuple[str, bool]] = {
    "check-then-use": ("""
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
ldxb %r0, [%r2+13]
out:
exit""", True),
    "read-past-the-checked-range": ("""
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
ldxb %r0, [%r2+14]
out:
exit""", False),
    "check-after-use": ("""
ldxb %r0, [%r2+12]
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
out:
exit""", False),
    "check-on-one-path-only": ("""
ldxw %r5, [%r1+16]
jeq %r5, 0, read
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
read:
ldxb %r0, [%r2+12]
out:
exit""", False),
    "range-lost-across-a-join": ("""
ldxw %r5, [%r1+16]
mov %r4, %r2
jeq %r5, 0, short
add %r4, 14
jgt %r4, %r3, out
ja join
short:
add %r4, 6
jgt %r4, %r3, out
join:
ldxb %r0, [%r2+12]
out:
exit""", False),
    "the-smaller-range-of-a-join-suffices": ("""
ldxw %r5, [%r1+16]
mov %r4, %r2
jeq %r5, 0, short
add %r4, 14
jgt %r4, %r3, out
ja join
short:
add %r4, 6
jgt %r4, %r3, out
join:
ldxb %r0, [%r2+5]
out:
exit""", True),
    "checked-copy": ("""
mov %r6, %r2
add %r6, 20
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
ldxb %r0, [%r6-7]
out:
exit""", True),
    "spilled-and-reloaded-pointer": ("""
stxdw [%r10-8], %r2
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
ldxdw %r6, [%r10-8]
ldxb %r0, [%r6+13]
out:
exit""", True),
    "spilled-before-a-failed-range": ("""
stxdw [%r10-8], %r2
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
ldxdw %r6, [%r10-8]
ldxb %r0, [%r6+14]
out:
exit""", False),
    "strict-comparison-taken-side": ("""
mov %r4, %r2
add %r4, 14
jlt %r4, %r3, in
exit
in:
ldxb %r0, [%r2+14]
exit""", True),
    "strict-comparison-one-past": ("""
mov %r4, %r2
add %r4, 14
jlt %r4, %r3, in
exit
in:
ldxb %r0, [%r2+15]
exit""", False),
    "end-on-the-left": ("""
mov %r4, %r2
add %r4, 14
jge %r3, %r4, in
exit
in:
ldxh %r0, [%r2+12]
exit""", True),
    "equality-proves-nothing": ("""
mov %r4, %r2
add %r4, 14
jne %r4, %r3, out
ldxb %r0, [%r2+12]
out:
exit""", False),
    "correlated-branches": ("""
ldxw %r5, [%r1+16]
jne %r5, 0, skip
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
skip:
jne %r5, 0, out
ldxb %r0, [%r2+12]
out:
exit""", True),
    "bounded-variable-offset": ("""
ldxw %r5, [%r1+16]
and %r5, 0xff
add %r2, %r5
mov %r4, %r2
add %r4, 4
jgt %r4, %r3, out
ldxw %r0, [%r2+0]
out:
exit""", True),
    "variable-offset-above-max-packet-offset": ("""
ldxw %r5, [%r1+16]
add %r2, %r5
mov %r4, %r2
add %r4, 4
jgt %r4, %r3, out
ldxw %r0, [%r2+0]
out:
exit""", False),
    "unbounded-variable-offset": ("""
mov %r4, %r2
add %r4, 8
jgt %r4, %r3, out
ldxdw %r5, [%r2+0]
add %r2, %r5
ldxb %r0, [%r2+0]
out:
exit""", False),
    "pointer-used-after-adjust-head": ("""
mov %r6, %r1
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
mov %r7, %r2
mov %r1, %r6
mov %r2, 4
call 44
ldxb %r0, [%r7+0]
out:
mov %r0, 2
exit""", False),
    "pointer-reloaded-after-adjust-head": ("""
mov %r6, %r1
mov %r2, 4
call 44
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r4, %r2
add %r4, 1
mov %r0, 2
jgt %r4, %r3, out
ldxb %r0, [%r2+0]
out:
exit""", True),
    "checked-inside-a-bounded-loop": ("""
mov %r6, 0
loop:
mov %r4, %r2
add %r4, 1
jgt %r4, %r3, out
ldxb %r5, [%r2+0]
add %r0, %r5
add %r2, 1
add %r6, 1
jlt %r6, 8, loop
out:
mov %r0, 2
exit""", True),
    "negative-offset": ("""
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
add %r2, 14
ldxb %r0, [%r2-15]
out:
exit""", False),
    "jmp32-comparison-proves-nothing": ("""
mov %r4, %r2
add %r4, 14
jgt32 %r4, %r3, out
ldxb %r0, [%r2+12]
out:
exit""", False),
    "arithmetic-on-data-end": ("""
add %r3, -4
mov %r0, 2
exit""", False),
    "csum-diff-of-unchecked-bytes": ("""
mov %r4, %r2
add %r4, 4
jgt %r4, %r3, out
mov %r1, %r2
mov %r2, 8
mov %r3, 0
mov %r4, 0
mov %r5, 0
call 28
out:
mov %r0, 2
exit""", False),
    "csum-diff-of-checked-bytes": ("""
mov %r4, %r2
add %r4, 8
jgt %r4, %r3, out
mov %r1, %r2
mov %r2, 8
mov %r3, 0
mov %r4, 0
mov %r5, 0
call 28
out:
mov %r0, 2
exit""", True),
}


def _program(tmp_path, name: str, body: str):
    path = elf_from_code(tmp_path, name, assemble(START + body))
    obj = load(path)
    return path, obj, obj.get_program("prog")


# a bpf-to-bpf sub-program checks the bounds its caller relies on (ranges cross frames)
SUBPROGRAM_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int long_enough(void *data, void *end, int n)
{
	return data + 14 <= end && n;
}

SEC("xdp")
int xdp_sub_checked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	if (!long_enough(data, (void *)(long)ctx->data_end, ctx->rx_queue_index + 1))
		return XDP_PASS;
	return data[13] == 0x08 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_sub_short(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	if (!long_enough(data, (void *)(long)ctx->data_end, ctx->rx_queue_index + 1))
		return XDP_PASS;
	return data[14] == 0x08 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_written_case_without_the_kernel(tmp_path, name):
    """Each hand-written case is refused or accepted as its comment says; a refusal names
    an instruction that reads or writes the packet."""
    body, ok = CASES[name]
    _, obj, prog = _program(tmp_path, name.replace("-", "_"), body)
    res = check_packet_bounds(prog, obj.maps)
    assert res.complete
    assert res.refused is not ok, res.refusal
    if res.refusal is not None:
        assert "packet" in res.refusal.message


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_written_case_matches_the_kernel(tmp_path, name):
    """The kernel verifier's accept / refuse equals ours on every hand-written case."""
    from offload.kernel_check import kernel_verdict
    body, _ = CASES[name]
    path, obj, prog = _program(tmp_path, name.replace("-", "_"), body)
    kv = kernel_verdict(path, "prog")
    assert kv.loaded is not None
    res = check_packet_bounds(prog, obj.maps)
    assert res.refused == (kv.loaded is False), (kv.message, res.refusal)
    if res.refused:
        assert kv.verifier and res.refusal.insn == kv.insn


@pytest.mark.kernel
@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_every_corpus_program_matches_the_kernel(name):
    """Every XDP program of every corpus object: ours accepts iff the verifier accepts."""
    from offload.kernel_check import kernel_verdict
    path = corpus_object(name)
    obj = load(path)
    progs = [p for p in obj.programs if p.prog_type == "xdp"]
    assert progs
    for prog in progs:
        kv = kernel_verdict(path, prog.name)
        res = check_packet_bounds(prog, obj.maps)
        assert res.complete, res.why
        assert res.refused == (kv.loaded is False), (prog.name, kv.message, res.refusal)


@pytest.mark.kernel
def test_the_kernel_rejected_test_program_is_refused_at_the_kernels_insn(tmp_path):
    """The unchecked read of the tests: refused at the kernel's instruction and C line; its
    neighbour in the object is accepted by both."""
    from offload.kernel_check import kernel_verdict
    path = compile_bpf(tmp_path, UNCHECKED_SOURCE, "unchecked")
    obj = load(path)
    bad = check_packet_bounds(obj.get_program("xdp_unchecked"), obj.maps)
    kv = kernel_verdict(path, "xdp_unchecked")
    assert bad.refused and kv.loaded is False
    assert (bad.refusal.insn, bad.refusal.line) == (kv.insn, kv.line)
    assert bad.refusal.source == "if (data[12] == 0x08)"
    assert "1-byte packet read at offset 12" in bad.refusal.message
    assert not check_packet_bounds(obj.get_program("xdp_fine"), obj.maps).refused
    assert kernel_verdict(path, "xdp_fine").loaded is True


@pytest.mark.kernel
@pytest.mark.parametrize("program", ["xdp_sub_checked", "xdp_sub_short"])
def test_range_proven_in_a_subprogram_matches_the_kernel(tmp_path, program):
    """A range a called function proves holds in the caller (up to the checked length)."""
    from offload.kernel_check import kernel_verdict
    path = compile_bpf(tmp_path, SUBPROGRAM_SOURCE, "sub")
    obj = load(path)
    res = check_packet_bounds(obj.get_program(program), obj.maps)
    kv = kernel_verdict(path, program)
    assert res.refused == (kv.loaded is False) == (program == "xdp_sub_short"), \
        (kv.message, res.refusal)


def _random_program(rng) -> str:
    """A bounds check (random comparison, operand order, length, optional variable offset
    and spill), then a read of random size and offset on one side of it."""
    lines = []
    if rng.random() < 0.4:  # a variable offset: data + (rx_queue_index & mask)
        mask = rng.choice([0x7, 0xff, 0xffff, 0x1ffff, 0xffffffff])
        lines += ["ldxw %r5, [%r1+16]", f"and %r5, {mask}", "add %r2, %r5"]
    n = rng.randrange(0, 40)
    lines += ["mov %r4, %r2", f"add %r4, {n}"]
    if rng.random() < 0.3:
        lines += ["stxdw [%r10-8], %r2"]
    op = rng.choice(["jgt", "jge", "jlt", "jle"])
    a, b = ("%r4", "%r3") if rng.random() < 0.5 else ("%r3", "%r4")
    lines += [f"{op} {a}, {b}, other"]
    read = "ldxdw %r2, [%r10-8]\n" if "stxdw [%r10-8], %r2" in lines else ""
    size = rng.choice([(1, "b"), (2, "h"), (4, "w"), (8, "dw")])
    off = rng.randrange(-2, 42)
    read += f"ldx{size[1]} %r0, [%r2{off:+d}]\nmov %r0, 2"
    first, second = (read, "") if rng.random() < 0.5 else ("", read)
    lines += [first, "exit", "other:", second, "exit"]
    return "\n".join(x for x in lines if x)


@pytest.mark.kernel
def test_random_bounds_checks_match_the_kernel(tmp_path):
    """300 seeded random programs (comparison, operand order, length, strictness, variable
    offsets, spills, read size and offset): ours refuses exactly those the kernel refuses."""
    import random

    from offload.kernel_check import kernel_verdict
    rng = random.Random(14)
    refused = 0
    for i in range(300):
        body = _random_program(rng)
        path, obj, prog = _program(tmp_path, f"r{i}", body)
        kv = kernel_verdict(path, "prog")
        res = check_packet_bounds(prog, obj.maps)
        assert res.refused == (kv.loaded is False), (body, kv.message, res.refusal)
        refused += res.refused
    assert 20 < refused < 280  # both answers are exercised (256 refused with seed 14)
