"""The configuration's ``target`` section for a pipeline target profile.

``profile_fields`` reads a pipeline profile (``hw/targets/*.toml``, a loaded
``hw.targets.PipelineTarget``) into the fields of the configuration document's ``target``
section (``hw.pipeline.TargetParams``): the profile's numbers clamped to what the
configuration format can express (at most 48 containers, 8 tables, 8 stateful units per
stage, 512-bit keys, 64 gateways and predicate bits; docs/pipeline.md). ``PIPE_DEFAULTS``,
the reference pipeline's (``pipe.toml``) fields, are ``TargetParams``' defaults, so the
profile is their one source; a profile that leaves out an optional key gets pipe's value.
The frame geometry (``frame_headroom``, ``frame_end``, ``min_packet_bytes``) is the kernel's
XDP frame (``ebpf.vm.xdp``), the same for every target: a pipeline returns what the kernel does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ebpf.vm import xdp
from hw.errors import TargetError
from hw.pipeline import ops as O
from hw.targets import PipelineTarget, load_target

MAX_CONTAINERS = O.MAX_CONTAINERS  # docs/pipeline.md section 4: PHV indices 0..47
MAX_TABLES = 8
MAX_STATEFUL = 8
MAX_KEY_BITS = 512

# docs/pipeline.md section 2: how far adjust_head may grow the frame (the headroom minus the
# struct xdp_frame kept at its start), the largest data_end offset of a linear test_run frame,
# and the shortest packet (ETH_HLEN).
FRAME_FIELDS = {
    "frame_headroom": xdp.XDP_PACKET_HEADROOM - xdp.XDP_FRAME_SIZE,
    "frame_end": xdp.TEST_RUN_FRAME_SIZE - xdp.XDP_PACKET_HEADROOM - xdp.SKB_SHARED_INFO_SIZE,
    "min_packet_bytes": xdp.ETH_HLEN,
}


def profile_fields(target: PipelineTarget,
                   base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``TargetParams`` keyword arguments for ``target``; ``base`` fills its absent keys."""
    base = PIPE_DEFAULTS if base is None else base
    st = target.stages
    ext = st.externs
    rc = target.recirculation
    ebpf = target.ebpf
    datapath = {k: (v if v is not None else base[k])
                for k, v in vars(target.datapath).items()}
    return {
        "name": target.name, "clock_mhz": target.clock_mhz,
        "bus_bits": target.packet.bus_bits or base["bus_bits"],
        "window_bytes": target.packet.window_bytes,
        "variable_offset": target.packet.variable_offset_access,
        "num_containers": min(MAX_CONTAINERS, target.phv.num_containers),
        "predicate_bits": min(64, target.phv.predicate_bits),
        "num_stages": st.count, "stage_cycles": st.latency_cycles,
        "recirc_cycles": (rc.penalty_cycles or 0) if rc.allowed else 0,
        "max_passes": (rc.max_passes or 1) if rc.allowed else 1,
        "gateways": min(64, st.gateways), "tables": min(MAX_TABLES, st.tables),
        "stateful_alus": min(MAX_STATEFUL, st.stateful_alus),
        "checksum_units": ext.checksum, "hash_units": ext.hash, "random_units": ext.random,
        "timestamp_units": ext.timestamp, "key_bits": min(MAX_KEY_BITS, st.max_key_bits),
        "sram_blocks": st.sram.blocks, "sram_entries": st.sram.entries,
        "sram_width_bits": st.sram.width_bits, "tcam_blocks": st.tcam.blocks,
        "tcam_entries": st.tcam.entries, "tcam_width_bits": st.tcam.width_bits,
        "mul_max_bits": ebpf.mul_max_bits if ebpf else 64, "div": ebpf.div if ebpf else "full",
        **datapath, **FRAME_FIELDS,
    }


def _pipe_defaults() -> dict[str, Any]:
    pipe = load_target("pipe")
    missing = [k for k, v in vars(pipe.datapath).items() if v is None]
    if missing:  # the reference profile must give every key: it is the defaults' one source
        raise TargetError(f"{pipe.source}: datapath: missing {', '.join(missing)}")
    return profile_fields(pipe, {"bus_bits": None})


PIPE_DEFAULTS: Mapping[str, Any] = _pipe_defaults()
