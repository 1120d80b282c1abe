"""Program analysis shared by every layer: branch targets, control-flow graphs, dominators,
post-dominators and loops (``ebpf.analysis.cfg``, ``ebpf.analysis.graph``); the
verifier-like abstract interpretation (``analyze``: registers and stack as known bits and
ranges, pointers by region, packet bounds, loop trip bounds; ``ebpf.analysis.dataflow`` on
``ebpf.analysis.domain``); the side-effect sites (``find_effects``); and the verifier's
path-sensitive packet-bounds proof (``ebpf.analysis.packet_bounds``, used by ``offload
check`` where the kernel cannot be asked).

The disassembler labels jumps with ``branch_target``; the run-to-completion cost models
(``hw.rtc``) cut blocks with ``build_cfg(prog, cut_calls=True)`` and classify memory
accesses with ``analyze``; the feasibility check (``hw.feasibility``) and the offload
compiler (``offload.lower``) build on all of it.
"""

from ebpf.analysis.cfg import (
    MAX_CALL_DEPTH,
    AnalysisError,
    Block,
    CfgError,
    FunctionCfg,
    ProgramCfg,
    branch_target,
    build_cfg,
    is_tail_call,
)
from ebpf.analysis.dataflow import Access, Analysis, Region, State, Val, analyze  # noqa: I001
from ebpf.analysis.domain import Scalar
from ebpf.analysis.effects import Effect, EffectKind, effects_by_block, find_effects
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

__all__ = ["MAX_CALL_DEPTH", "SINK", "Access", "Analysis", "AnalysisError", "Block",
           "CfgError", "Effect", "EffectKind", "FunctionCfg", "Loop", "ProgramCfg", "Region",
           "Scalar", "State", "Val", "analyze", "branch_target", "build_cfg", "descendants",
           "dominates", "dominators", "effects_by_block", "find_effects",
           "immediate_dominators", "is_tail_call", "iter_dominators", "natural_loops",
           "post_dominators", "reverse_postorder"]
