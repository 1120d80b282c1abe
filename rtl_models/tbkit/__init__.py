"""Shared cocotb testbench code for rtl_models: base TB, AXI-Stream helpers, PHV, images.

Testbenches import from here instead of copying helpers (docs: shared/STYLE.md, "Bus models
and testbenches").
"""

from rtl_models.tbkit.axis import BeatMonitor, frame, make_sink, make_source, random_pause
from rtl_models.tbkit.images import (
    config_parameters,
    read_config,
    sv_literal,
    target_parameters,
    write_images,
)
from rtl_models.tbkit.phv import Phv, PhvLayout
from rtl_models.tbkit.tb import TB

__all__ = ["TB", "BeatMonitor", "Phv", "PhvLayout", "config_parameters", "frame",
           "make_sink", "make_source", "random_pause", "read_config", "sv_literal",
           "target_parameters", "write_images"]
