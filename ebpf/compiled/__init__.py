"""The compiled executor: eBPF translated to LLVM IR and run as native code (llvmlite).

``codegen`` translates one program (one emitter per ``ebpf.code.isa.Kind``); ``native`` runs it
as a ``CompiledVm``, the reference VM with its instruction loop replaced by the native
function.
"""

from ebpf.compiled.native import CompiledUnsupported, CompiledVm, unsupported_reason, vm_class

__all__ = ["CompiledUnsupported", "CompiledVm", "unsupported_reason", "vm_class"]
