"""Run-to-completion cost models from VM traces: an NFP-like NPU, an hXDP-like VLIW soft
core, and general-purpose cores (host, DPU) timed by the kernel or modelled per instruction.

Each ``estimate_*`` returns a ``CostEstimate`` (per-packet cost, Mpps per core and in all,
what bounds it, where the numbers come from), with the target's verdict from
``hw.feasibility.check_target`` (the one feasibility check of every target kind).
"""

from hw.rtc.common import CostEstimate, RtcError, build_cfg, iter_executed_blocks, wire_mpps
from hw.rtc.cpu import (
    DEFAULT_MODEL,
    HostMeasurement,
    LinearModel,
    calibrate,
    calibration_point,
    estimate_cpu,
    fit_linear,
    measure_host,
)
from hw.rtc.npu import estimate_npu
from hw.rtc.vliw import VliwSchedule, cycles_per_packet, estimate_vliw, schedule_program

__all__ = [
    "DEFAULT_MODEL", "CostEstimate", "HostMeasurement", "LinearModel", "RtcError",
    "VliwSchedule", "build_cfg", "calibrate", "calibration_point", "cycles_per_packet", "estimate_cpu", "estimate_npu", "estimate_vliw",
    "fit_linear", "iter_executed_blocks", "measure_host", "schedule_program", "wire_mpps",
]
