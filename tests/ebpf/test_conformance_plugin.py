"""`offload-bpf-plugin`: the bpf_conformance plugin protocol over the reference VM."""

from __future__ import annotations

import subprocess
import sys

from ebpf.code.asm import assemble


def plugin(program: str, memory: str = "", *extra: str) -> subprocess.CompletedProcess:
    code = assemble(program).hex()
    return subprocess.run([sys.executable, "-m", "ebpf.conformance_plugin", memory, *extra],
                          input=code + "\n", capture_output=True, text=True)


def test_r0_printed_in_hex():
    """r0 is printed in hex without a prefix, exit status 0."""
    proc = plugin("lddw %r0, 0x1122334455667788\nexit\n")
    assert (proc.returncode, proc.stdout) == (0, "1122334455667788\n")


def test_memory_and_length():
    """r1 points at the memory argument and r2 holds its length."""
    proc = plugin("ldxh %r0, [%r1+1]\nadd %r0, %r2\nexit\n", "00aabbcc")
    assert proc.stdout == f"{0xbbaa + 4:x}\n"


def test_stack_at_r10():
    """r10 is the top of a writable stack."""
    proc = plugin("stdw [%r10-8], 77\nldxdw %r0, [%r10-8]\nexit\n")
    assert proc.stdout == f"{77:x}\n"


def test_program_option():
    """--program gives the program instead of standard input."""
    code = assemble("mov %r0, 5\nexit\n").hex()
    proc = subprocess.run([sys.executable, "-m", "ebpf.conformance_plugin", "", "--program",
                           code], capture_output=True, text=True)
    assert proc.stdout == "5\n"


def test_fault_is_an_error():
    """An out-of-bounds read is one line on stderr and a non-zero exit."""
    proc = plugin("ldxb %r0, [%r1+20]\nexit\n", "0011")
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "out of bounds" in proc.stderr


def test_bad_hex_is_an_error():
    """Input that is not hex is rejected."""
    proc = subprocess.run([sys.executable, "-m", "ebpf.conformance_plugin"], input="zz\n",
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "non-hexadecimal" in proc.stderr
