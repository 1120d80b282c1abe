"""The root error of rtl_models and its two kinds."""

from ebpf.display import PrintableError


class RtlError(PrintableError):
    """Anything rtl_models reports as an error."""


class RtlTestError(RtlError):
    """A cocotb testbench, a lint run or a synthesis failed."""


class CosimError(RtlError):
    """The program cannot be co-simulated (a bad object, a target without RTL, nothing
    offloaded, bad options): one line, for ``offload rtl``'s exit status 2."""
