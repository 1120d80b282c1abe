"""The eBPF platform: ISA, assembler, disassembler, ELF/BTF loader. Knows nothing of NICs."""

from ebpf.errors import AsmError, BtfError, EbpfError, ElfError, IsaError, KernelError, VmError

__all__ = ["AsmError", "BtfError", "EbpfError", "ElfError", "IsaError", "KernelError", "VmError"]
