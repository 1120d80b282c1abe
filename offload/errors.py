"""The offload package's errors: one root, one subclass per concern.

The command line turns a ``MapperError`` into one line and exit status 2, like the ``ebpf``
and ``hw`` roots (``EbpfError``, ``HwError``). Like every root error, its message is shown
through ``ebpf.display.printable`` (``PrintableError``).
"""

from ebpf.display import PrintableError


class MapperError(PrintableError):
    """Root of every error the offload compiler (analysis, feasibility, lowering) raises."""


class SweepError(MapperError):
    """A design-space sweep that cannot run (``offload sweep``)."""


class SweepSpecError(SweepError):
    """A sweep specification with a problem: names the spec file and the key."""
