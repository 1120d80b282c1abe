"""The eBPF platform, the bottom layer: ISA table, assembler and disassembler, ELF/BTF loader,
maps and helpers, the reference VM and the kernel bridge (libbpf, BPF_PROG_TEST_RUN).
Knows nothing of NICs and imports no other package of the project. Exposes the error types
(``EbpfError`` and its kinds); the modules are imported directly (``ebpf.elf.load``,
``ebpf.vm.Vm``, ...)."""

from ebpf.errors import AsmError, BtfError, EbpfError, ElfError, IsaError, KernelError, VmError

__all__ = ["AsmError", "BtfError", "EbpfError", "ElfError", "IsaError", "KernelError", "VmError"]
