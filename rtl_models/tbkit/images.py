"""Configurations for the RTL: memory images on disk and the matching Verilog parameters."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from hw.pipeline import PipelineConfig, load_config, write_memory_images
from hw.pipeline.config import TargetParams

# TargetParams fields the RTL has no parameter for (budgets checked by validation only)
_NOT_RTL = {"name", "clock_mhz", "sram_blocks", "sram_entries", "sram_width_bits",
            "tcam_blocks", "tcam_entries", "tcam_width_bits"}


def sv_literal(value: Any) -> str:
    """A Verilog literal for the runner's ``-P`` options: strings quoted, bools 0/1."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def target_parameters(t: TargetParams, names: set[str] | None = None) -> dict[str, Any]:
    """Verilog parameters of a target: each field's name upper-cased, clock as CLOCK_KHZ.

    ``names`` restricts the result to the parameters a module declares.
    """
    out: dict[str, Any] = {"CLOCK_KHZ": t.clock_khz}
    for f in dataclasses.fields(TargetParams):
        if f.name not in _NOT_RTL:
            out[f.name.upper()] = getattr(t, f.name)
    if names is not None:
        out = {k: v for k, v in out.items() if k in names}
    return out


def config_parameters(config: PipelineConfig, image_dir: str | os.PathLike[str]
                      ) -> dict[str, Any]:
    """pipe_top's parameters for a configuration whose images are in ``image_dir``.

    TABLE_DEPTH and REG_WORDS are the largest table size and register count the
    configuration uses (at least 1), so that the simulation holds no more than it needs.
    """
    sizes = [tb.size for st in config.stages for tb in st.tables] or [1]
    words = [u.words for st in config.stages for u in st.stateful] or [1]
    return {**target_parameters(config.target), "NUM_PASSES": config.num_passes,
            "TABLE_DEPTH": max(sizes), "REG_WORDS": max(words),
            "IMAGE_DIR": str(Path(image_dir).resolve())}


def write_images(config: PipelineConfig | dict | str | os.PathLike[str],
                 image_dir: str | os.PathLike[str]) -> PipelineConfig:
    """Load and validate ``config``, write its images and the document itself (config.json)."""
    from hw.pipeline import dump_config

    cfg = load_config(config)
    out = Path(image_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_memory_images(cfg, out)
    (out / "config.json").write_text(json.dumps(dump_config(cfg), indent=1) + "\n")
    return cfg


def read_config(image_dir: str | os.PathLike[str]) -> PipelineConfig:
    """The configuration a testbench runs (config.json next to its images)."""
    return load_config(Path(image_dir) / "config.json")
