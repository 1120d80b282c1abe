"""Hardware descriptions and models: target profiles (TOML with cited numbers), the pipeline
model, run-to-completion core models (``hw.rtc``) and the per-packet cost of each target
kind that the mapper, the report and the simulator share (``hw.cost``).

Depends on ``ebpf`` only (../shared/ARCHITECTURE.md: ``ebpf`` <- ``hw`` <- ``offload``).
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
