"""pipe_top's system run: a configuration's images and a packet trace through the RTL.

The RTL half of a co-simulation, below ``offload``: the caller (``offload.cosim``) maps the
program and writes the images with the scenario state; ``write_trace`` puts the packets the
pipeline accepts in the work folder and ``run_system`` runs
``rtl_models/tb/pipe_top/test_pipe_system.py`` on them under Icarus (cocotb's runner). The
testbench compares every output with ``hw.pipeline.PipelineModel`` and writes its measures
to ``result.json``; ``run_system`` returns that document (keys ``packets, punted,
table_hits, mismatches, output_mismatches, state_mismatches, timing_mismatches,
latency_cycles, model_latency_cycles, ii, model_ii, differences, cycles``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtl_models.errors import CosimError, RtlTestError
from rtl_models.runner import has_simulator, run_testbench
from rtl_models.tbkit.images import config_parameters

TESTBENCH = "rtl_models.tb.pipe_top.test_pipe_system"


def write_trace(workdir: Path, packets: list[bytes], min_packet_bytes: int) -> Path:
    """``<workdir>/packets.json``: the packets of at least ``min_packet_bytes`` (the others
    never enter the pipeline), hex, in order."""
    path = workdir / "packets.json"
    sent = [p for p in packets if len(p) >= min_packet_bytes]
    path.write_text(json.dumps([p.hex() for p in sent]) + "\n")
    return path


def run_system(config: Any, images: Path, workdir: Path, *, label: str, seed: int,
               idle: float, backpressure: float, timed: int, waves: bool | None = None,
               quiet: bool = False) -> dict[str, Any]:
    """Run pipe_top with ``images`` (written from ``config``) on ``<workdir>/packets.json``;
    the testbench's result document. ``label`` names the program in error messages;
    ``quiet``: the simulator's output goes to ``<workdir>/sim.log`` instead of stdout."""
    if not has_simulator():
        raise CosimError("iverilog and vvp are needed (Debian package iverilog)")
    result_file = workdir / "result.json"
    result_file.unlink(missing_ok=True)
    failure = ""
    try:
        run_testbench("pipe_top", module=TESTBENCH,
                      parameters=config_parameters(config, images), waves=waves,
                      build_dir=workdir / "build",
                      env={"PIPE_IMAGES": str(images),
                           "COSIM_PACKETS": str(workdir / "packets.json"),
                           "COSIM_RESULT": str(result_file), "TB_SEED": str(seed),
                           "COSIM_IDLE": str(idle), "COSIM_BACKPRESSURE": str(backpressure),
                           "COSIM_TIMED": str(timed)},
                      log_file=workdir / "sim.log" if quiet else None, rebuild=True)
    except RtlTestError as exc:
        failure = str(exc)
    if not result_file.exists():
        raise RtlTestError(f"{label}: the RTL simulation wrote no result "
                           f"({failure or 'no error reported'}; see {workdir / 'build'})")
    return json.loads(result_file.read_text())
