"""Program analysis for the offload compiler: control flow, abstract state, side effects.

``build_cfg`` (``ebpf.analysis``, shared with hw.rtc and the disassembler) gives the basic
blocks, dominators and loops of every function; ``analyze``
runs the verifier-like abstract interpretation (``Analysis``: the state before every slot,
the memory accesses, loop trip bounds); ``find_effects`` lists the side-effect sites.
"""

from ebpf.analysis import Block, FunctionCfg, Loop, ProgramCfg, build_cfg
from offload.analysis.dataflow import Access, Analysis, Region, State, Val, analyze
from offload.analysis.domain import Scalar
from offload.analysis.effects import Effect, EffectKind, effects_by_block, find_effects

__all__ = ["Access", "Analysis", "Block", "Effect", "EffectKind", "FunctionCfg", "Loop",
           "ProgramCfg", "Region", "Scalar", "State", "Val", "analyze", "build_cfg",
           "effects_by_block", "find_effects"]
