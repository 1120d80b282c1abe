"""The hw package's errors: one root, one subclass per concern."""

from ebpf.display import PrintableError


class HwError(PrintableError):
    """Root of every error the hw package raises on bad input (profiles, configurations)."""


class TargetError(HwError):
    """A target profile that cannot be used: the message names the file, the key and the problem."""
