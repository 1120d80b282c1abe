"""The simulation package's errors."""

from ebpf.display import PrintableError


class SimError(PrintableError):
    """Root of every error the sim package raises on bad input."""


class PcapError(SimError):
    """A capture file that cannot be read or written."""
