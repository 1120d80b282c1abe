"""Program analysis shared by every layer: branch targets, control-flow graphs, dominators,
post-dominators and loops (``ebpf.analysis.cfg``, ``ebpf.analysis.graph``), and the
verifier's packet-bounds proof (``ebpf.analysis.packet_bounds``, used by ``offload check``
where the kernel cannot be asked).

The disassembler labels jumps with ``branch_target``; the run-to-completion cost models
(``hw.rtc``) cut blocks with ``build_cfg(prog, cut_calls=True)``; the offload compiler
(``offload.analysis``, ``offload.lower``) builds on ``build_cfg`` and the graph functions.
"""

from ebpf.analysis.cfg import (
    MAX_CALL_DEPTH,
    Block,
    CfgError,
    FunctionCfg,
    ProgramCfg,
    branch_target,
    build_cfg,
    is_tail_call,
)
from ebpf.analysis.graph import (
    SINK,
    Loop,
    descendants,
    dominates,
    dominators,
    immediate_dominators,
    iter_dominators,
    natural_loops,
    post_dominators,
    reverse_postorder,
)

__all__ = ["MAX_CALL_DEPTH", "SINK", "Block", "CfgError", "FunctionCfg", "Loop", "ProgramCfg",
           "branch_target", "build_cfg", "descendants", "dominates", "dominators",
           "immediate_dominators", "is_tail_call", "iter_dominators", "natural_loops",
           "post_dominators", "reverse_postorder"]
