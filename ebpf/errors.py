"""The eBPF platform's errors: one root, one subclass per concern."""

from ebpf.display import PrintableError


class EbpfError(PrintableError):
    """Root of every error the ebpf package raises on bad input or a failed run."""


class IsaError(EbpfError):
    """An instruction that is not valid eBPF (unknown opcode, reserved field set)."""


class AsmError(EbpfError):
    """Assembler input that does not parse; the message names the line."""


class ElfError(EbpfError):
    """An object file that cannot be loaded; the message names what and where."""


class BtfError(ElfError):
    """Malformed BTF or BTF.ext data."""


class VmError(EbpfError):
    """A program the VM cannot run: the message names the instruction and source line."""


class KernelError(EbpfError):
    """The kernel refused an operation (bpf(2) failure, verifier rejection)."""
