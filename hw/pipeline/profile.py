"""The configuration's ``target`` section for a pipeline target profile.

``target_params`` reads a pipeline profile (``hw/targets/*.toml``, a loaded
``hw.targets.PipelineTarget``) into the configuration document's ``target`` section
(``hw.pipeline.TargetParams``): the profile's numbers clamped to what the configuration
format can express (at most 48 containers, 8 tables, 8 stateful units per stage, 512-bit
keys, 64 gateways and predicate bits; docs/pipeline.md). The lowering
(``offload.lower``) builds its configurations on it, and the simulator (``sim.mapping``)
times a pipeline pass with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hw.pipeline import ops as O
from hw.pipeline.config import TargetParams

if TYPE_CHECKING:
    from hw.targets import PipelineTarget

MAX_CONTAINERS = O.MAX_CONTAINERS  # docs/pipeline.md section 4: PHV indices 0..47
MAX_TABLES = 8
MAX_STATEFUL = 8
MAX_KEY_BITS = 512


def target_params(target: PipelineTarget) -> TargetParams:
    """The configuration's ``target`` section for a pipeline profile."""
    st = target.stages
    ext = st.externs
    rc = target.recirculation
    containers = min(MAX_CONTAINERS, target.phv.num_containers)
    base = TargetParams()
    ebpf = target.ebpf
    return TargetParams(
        name=target.name, clock_mhz=target.clock_mhz,
        bus_bits=target.packet.bus_bits or base.bus_bits,
        window_bytes=target.packet.window_bytes,
        window_headroom=base.window_headroom,
        variable_offset=target.packet.variable_offset_access,
        num_containers=containers, predicate_bits=min(64, target.phv.predicate_bits),
        num_stages=st.count, stage_cycles=st.latency_cycles,
        recirc_cycles=(rc.penalty_cycles or 0) if rc.allowed else 0,
        max_passes=(rc.max_passes or 1) if rc.allowed else 1,
        gateways=min(64, st.gateways), tables=min(MAX_TABLES, st.tables),
        stateful_alus=min(MAX_STATEFUL, st.stateful_alus),
        checksum_units=ext.checksum, hash_units=ext.hash, random_units=ext.random,
        timestamp_units=ext.timestamp, key_bits=min(MAX_KEY_BITS, st.max_key_bits),
        sram_blocks=st.sram.blocks, sram_entries=st.sram.entries,
        sram_width_bits=st.sram.width_bits, tcam_blocks=st.tcam.blocks,
        tcam_entries=st.tcam.entries, tcam_width_bits=st.tcam.width_bits,
        mul_max_bits=ebpf.mul_max_bits if ebpf else 64, div=ebpf.div if ebpf else "full")
