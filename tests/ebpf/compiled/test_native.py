"""The compiled VM against the reference VM: the VM's own ISA and fault tests rerun with
the native code, and refusal of what it does not compile."""

from __future__ import annotations

import inspect

import pytest

import tests.ebpf.vm.test_machine as vm_tests
from ebpf.compiled import CompiledUnsupported, CompiledVm, unsupported_reason
from ebpf.vm.machine import Vm

VM_CASES = sorted(n for n, f in vars(vm_tests).items()
                  if n.startswith("test_") and inspect.isfunction(f))
# The VM's cases whose programs the compiled VM refuses (bpf_loop's callbacks, a tail call
# from a sub-program): each must be refused, not run differently.
REFUSED = {"test_bpf_loop_calls_callback": "calls bpf_loop",
           "test_bpf_loop_stops_when_callback_returns_one": "calls bpf_loop",
           "test_tail_call_from_subprogram_returns_to_its_caller": "tail call from a sub"}


@pytest.mark.parametrize("name", VM_CASES)
def test_vm_case_holds_compiled(name, monkeypatch, request):
    """Each hand-worked case of the VM's tests (ALU corners, jumps, paths, memory, faults
    with their messages, helpers, calls, tail calls) holds with the native code running;
    the few programs it does not compile are refused with the reason."""
    monkeypatch.setattr(vm_tests, "Vm", CompiledVm)
    fn = getattr(vm_tests, name)
    args = {p: request.getfixturevalue(p) for p in inspect.signature(fn).parameters}
    if name in REFUSED:
        with pytest.raises(CompiledUnsupported, match=REFUSED[name]):
            fn(**args)
    else:
        fn(**args)


def test_cases_really_ran_compiled(monkeypatch):
    """The substitution reaches the VM's tests: their helper builds a CompiledVm."""
    monkeypatch.setattr(vm_tests, "Vm", CompiledVm)
    seen = []
    orig = CompiledVm._execute

    def spy(self):
        seen.append(type(self))
        return orig(self)

    monkeypatch.setattr(CompiledVm, "_execute", spy)
    assert vm_tests.r0("mov %r0, 7\nadd %r0, 5") == 12
    assert seen == [CompiledVm]


def test_bpf_loop_is_refused():
    """A program calling bpf_loop (a helper that calls back into it) is refused, naming it."""
    p = vm_tests.prog("mov %r1, 1\nmov %r2, 0\nmov %r3, 0\nmov %r4, 0\ncall 181\nexit")
    assert "bpf_loop" in (unsupported_reason([p]) or "")
    with pytest.raises(CompiledUnsupported, match="calls bpf_loop"):
        CompiledVm([], p)
    assert isinstance(Vm([], p), Vm)


def test_native_code_built_once_per_program(monkeypatch):
    """A second VM of the same instructions reuses the native code (the IR is built once
    per process) and computes what the reference VM does; other instructions build anew."""
    from ebpf.compiled import codegen, native

    monkeypatch.setattr(native, "_BUILT", {})
    built = []
    orig = codegen.build_function

    def spy(module, name, prog, plan):
        built.append(prog.name)
        return orig(module, name, prog, plan)

    monkeypatch.setattr(codegen, "build_function", spy)
    text = "mov %r0, 40\nmov %r1, 3\nmul %r0, %r1\nadd %r0, 2\nexit"
    want = Vm([], vm_tests.prog(text)).run(b"").ret
    assert want == 122
    assert [CompiledVm([], vm_tests.prog(text)).run(b"").ret for _ in range(3)] == [want] * 3
    assert len(built) == 1
    assert CompiledVm([], vm_tests.prog(text.replace("40", "41"))).run(b"").ret == 125
    assert len(built) == 2
