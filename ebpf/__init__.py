"""The eBPF platform, the bottom layer, in sub-packages: ``code`` (ISA table, assembler,
disassembler), ``loader`` (ELF/BTF), ``vm`` (the reference VM), ``maps`` and ``helpers``,
``kernel`` (the kernel bridge: libbpf, BPF_PROG_TEST_RUN); executors behind one interface.
Knows nothing of NICs and imports no other package of the project. Exposes the error types
(``EbpfError`` and its kinds); the modules are imported directly (``ebpf.loader.elf.load``,
``ebpf.vm.machine.Vm``, ...)."""

from ebpf.errors import AsmError, BtfError, EbpfError, ElfError, IsaError, KernelError, VmError

__all__ = ["AsmError", "BtfError", "EbpfError", "ElfError", "IsaError", "KernelError", "VmError"]
