"""Hardware descriptions and models: target profiles (TOML with cited numbers) and, later, the
pipeline model, run-to-completion core models, host and PCIe models.

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
