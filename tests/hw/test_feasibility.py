"""hw.feasibility: the one feasibility check of every target kind, on the nfp profile (the
constructs an NPU refuses, named with their C lines) and on targets without limits."""

from __future__ import annotations

import re

import pytest

from hw.feasibility import check_target
from hw.targets import load_target
from tests.conftest import ROOT
from tests.hw.rtc import corpus, prog

NFP = load_target("nfp")


def c_line(name: str, needle: str) -> int:
    """The 1-based line of examples/xdp/<name>.c that contains ``needle``."""
    lines = (ROOT / "examples" / "xdp" / f"{name}.c").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


def reasons(name: str, program: str | None = None) -> dict[str, list]:
    obj = corpus(name)
    feas = check_target(obj, obj.get_program(program), NFP)
    out: dict[str, list] = {}
    for r in feas.reasons:
        out.setdefault(r.kind, []).append(r)
    assert feas.ok == (not out)
    return out


def test_nfp_rejects_lpm_router():
    """lpm_router: LPM_TRIE and DEVMAP maps, bpf_redirect_map, XDP_REDIRECT; lines named."""
    found = reasons("lpm_router")
    assert {"map_type", "helper", "verdict"} <= set(found)
    lpm = next(r for r in found["map_type"] if "lpm_trie" in r.message)
    assert "'routes'" in lpm.message
    assert lpm.where == f"lpm_router.c:{c_line('lpm_router', 'bpf_map_lookup_elem(&routes')}"
    helper = found["helper"][0]
    assert "bpf_redirect_map" in helper.message
    assert helper.where == f"lpm_router.c:{c_line('lpm_router', 'bpf_redirect_map(&tx_ports')}"
    assert re.fullmatch(r"insn \d+ \(lpm_router\.c:\d+\): calls bpf_redirect_map, .*",
                        helper.message)
    assert "XDP_REDIRECT" in found["verdict"][0].message


def test_nfp_rejects_tail_calls():
    """tail_call's dispatcher: PROG_ARRAY map and bpf_tail_call, at the call's line."""
    found = reasons("tail_call", "xdp_dispatch")
    assert "prog_array" in found["map_type"][0].message
    assert "bpf_tail_call" in found["helper"][0].message
    assert found["helper"][0].where == f"tail_call.c:{c_line('tail_call', 'bpf_tail_call(ctx')}"


def test_nfp_rejects_fib_lookup():
    """fib_router: bpf_fib_lookup (id 69) named with its line."""
    found = reasons("fib_router")
    fib = next(r for r in found["helper"] if "bpf_fib_lookup" in r.message)
    assert "host" in fib.fix  # where the helper exists
    assert fib.where == f"fib_router.c:{c_line('fib_router', 'bpf_fib_lookup(ctx')}"


@pytest.mark.parametrize(("name", "map_type"), [("firewall", "lpm_trie"),
                                                ("parser_counters", "percpu_array")])
def test_nfp_rejects_unsupported_map_types(name, map_type):
    """firewall (LPM_TRIE) and parser_counters (PERCPU_ARRAY) are refused by map type."""
    found = reasons(name)
    assert any(map_type in r.message for r in found["map_type"])


@pytest.mark.parametrize("name", ["xdp_drop", "xdp_pass", "xdp_tx", "icmp_echo",
                                  "adjust_tail"])
def test_nfp_accepts_simple_programs(name):
    """Programs with array maps and supported helpers only pass."""
    assert reasons(name) == {}


def test_host_accepts_everything():
    """A cpu target without [ebpf] limits accepts every program."""
    obj = corpus("fib_router")
    assert check_target(obj, obj.programs[0], load_target("host")).ok


@pytest.mark.parametrize(("text", "rule", "fragment"), [
    ("mov %r1, 3\nmul %r1, %r2\nmov %r0, 2\nexit", "alu", "64-bit multiplication"),
    ("mov %r1, 3\nmul32 %r1, 3\nmov %r0, 2\nexit", None, None),
    ("mov %r1, 3\ndiv %r1, %r2\nmov %r0, 2\nexit", "alu", "division by a non-constant"),
    ("mov %r1, 3\ndiv %r1, 7\nmov %r0, 2\nexit", None, None),
    ("mov %r2, 1\nlock xor [%r10-8], %r2\nmov %r0, 2\nexit", "atomic", "atomic xor"),
    ("mov %r2, 1\nlock add [%r10-8], %r2\nmov %r0, 2\nexit", None, None),
    ("mov %r2, 1\nlock fetch add [%r10-8], %r2\nmov %r0, 2\nexit", "atomic",
     "atomic fetch_add"),
    ("mov %r0, 4\nexit", "verdict", "XDP_REDIRECT"),
    ("ldxw %r3, [%r1+16]\nand %r3, 7\nmov %r2, %r10\nsub %r2, %r3\nstb [%r2-1], 0\n"
     "mov %r0, 2\nexit", "variable_stack", "at a variable offset"),
    ("stb [%r10-512], 0\nstb [%r10-8], 0\nmov %r0, 2\nexit", None, None),
])
def test_nfp_instruction_rules(text, rule, fragment):
    """Multiply width, division, atomics, verdicts and stack offsets, one by one (the
    unbounded operand r2 is what makes the multiply and the division refused)."""
    feas = check_target(corpus("xdp_drop"), prog(text), NFP)
    if rule is None:
        assert feas.ok, feas.reasons
    else:
        assert [r.kind for r in feas.reasons] == [rule], feas.reasons
        assert fragment in feas.reasons[0].message
        assert feas.reasons[0].message.startswith("insn ")


def test_unbounded_variable_stack_offset_is_also_too_deep():
    """A stack index the program never bounds may reach 2^32 bytes down: both reasons."""
    text = "ldxw %r3, [%r1+16]\nmov %r2, %r10\nsub %r2, %r3\nstb [%r2-1], 0\nmov %r0, 2\nexit"
    feas = check_target(corpus("xdp_drop"), prog(text), NFP)
    assert sorted(r.kind for r in feas.reasons) == ["stack", "variable_stack"]
