"""Per-packet cost models, one per target kind, called by the mapper, the report and the
simulator alike. ``hw.cost.host``: general-purpose cores under the kernel JIT (host, DPU)."""

from hw.cost.host import HostCost, HostCostError, ProgramTimer, carry_factor, this_machine_mhz

__all__ = ["HostCost", "HostCostError", "ProgramTimer", "carry_factor", "this_machine_mhz"]
