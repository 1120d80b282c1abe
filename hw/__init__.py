"""Hardware descriptions and models: target profiles (``hw.targets``, TOML with cited
numbers), the pipe target's configuration and functional / timing models (``hw.pipeline``),
the run-to-completion cost models (``hw.rtc``: NPU, VLIW, CPU cores), the feasibility check
of every target kind (``hw.feasibility``), the per-packet cost of
each target kind that the mapper, the report and the simulator share (``hw.cost``) and
Ethernet framing (``hw.ethernet``). Exposes the target loaders and errors below.

Depends on ``ebpf`` only (docs/architecture.md: ``ebpf`` <- ``hw`` <- ``sim``; ``rtl_models``
and ``offload`` above).
"""

from hw.errors import HwError, TargetError
from hw.targets import (
    DEFAULT_TARGET,
    CpuTarget,
    EbpfLimits,
    NpuTarget,
    PcieLink,
    PipelineTarget,
    Target,
    VliwTarget,
    list_targets,
    load_target,
    load_target_file,
)

__all__ = [
    "DEFAULT_TARGET", "CpuTarget", "EbpfLimits", "HwError", "NpuTarget", "PcieLink",
    "PipelineTarget", "Target", "TargetError", "VliwTarget", "list_targets", "load_target",
    "load_target_file",
]
