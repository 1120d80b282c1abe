"""The program analysis the offload compiler uses, which lives in ``ebpf.analysis`` (shared
with ``hw.rtc`` and the feasibility check): this package names it for the compiler's
modules. ``offload.analysis.dataflow`` / ``.domain`` / ``.effects`` are the same modules as
``ebpf.analysis.dataflow`` / ``.domain`` / ``.effects``.
"""

import sys

from ebpf.analysis import (
    Access,
    Analysis,
    AnalysisError,
    Block,
    Effect,
    EffectKind,
    FunctionCfg,
    Loop,
    ProgramCfg,
    Region,
    Scalar,
    State,
    Val,
    analyze,
    build_cfg,
    dataflow,
    domain,
    effects,
    effects_by_block,
    find_effects,
)

# One module object under both names (isinstance and module-level state stay one).
for _name, _module in (("dataflow", dataflow), ("domain", domain), ("effects", effects)):
    sys.modules[f"{__name__}.{_name}"] = _module

__all__ = ["Access", "Analysis", "AnalysisError", "Block", "Effect", "EffectKind",
           "FunctionCfg", "Loop", "ProgramCfg", "Region", "Scalar", "State", "Val", "analyze",
           "build_cfg", "dataflow", "domain", "effects", "effects_by_block", "find_effects"]
