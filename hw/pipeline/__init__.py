"""The pipe target: its configuration document, memory images, functional and timing models.

docs/pipeline.md is the specification; this package is its executable form and the oracle
for the RTL (rtl_models/). Typical use::

    config = load_config("prog.pipeline.json")
    model = PipelineModel(config)          # tables and registers from the document
    result = model.process(packet_bytes)   # verdict, packet_out, punt, containers, ...
    TimingModel(config).simulate([64] * 1000).sustained_ii
    write_memory_images(config, "build/images/prog")   # $readmemh files for the RTL
"""

from hw.pipeline.config import (
    FORMAT,
    VERSION,
    Buffer,
    Entry,
    Extern,
    Extract,
    Gateway,
    MapBinding,
    Op,
    PipelineConfig,
    RegisterSlice,
    Slice,
    Stage,
    Stateful,
    Table,
    TargetParams,
    dump_config,
    load_config,
    save_config,
    target_params,
)
from hw.pipeline.errors import ConfigError, PipelineError
from hw.pipeline.images import canonical, read_memory_images, write_memory_images
from hw.pipeline.model import PipelineModel, PipelineResult, Punt, RegisterWrite, parse_punt
from hw.pipeline.state import PipelineState, TableMemory
from hw.pipeline.timing import SimResult, StageUse, TimingModel

__all__ = [
    "FORMAT", "VERSION", "Buffer", "ConfigError", "Entry", "Extern", "Extract", "Gateway",
    "MapBinding", "Op", "PipelineConfig", "PipelineError", "PipelineModel", "PipelineResult",
    "PipelineState", "Punt", "RegisterSlice", "RegisterWrite", "SimResult", "Slice", "Stage",
    "StageUse", "Stateful", "Table", "TableMemory", "TargetParams", "TimingModel",
    "canonical", "dump_config", "load_config", "parse_punt", "read_memory_images",
    "save_config", "target_params", "write_memory_images",
]
