"""The RTL regression: every cocotb testbench of rtl_models, lint and synthesis (pytest entry).

Each testbench module ``rtl_models/tb/<dut>/test_<dut>.py`` has ``run(workdir)``, which
writes the memory images it needs, builds the DUT with cocotb's Python runner (Icarus
Verilog) and runs its cocotb tests against hw/pipeline; a failing cocotb test fails here.
Builds go to a temporary directory (``RTL_BUILD_DIR``); ``WAVES=1`` dumps waveforms there.
Tests skip with one line when iverilog, cocotb or yosys is missing (fail under REQUIRE_RTL=1).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

from rtl_models.runner import lint, sources, yosys_stats

UNITS = ["pipe_alu", "pipe_gateway", "pipe_table", "pipe_stateful", "pipe_winld",
         "pipe_winst", "pipe_adjust", "pipe_extbuf", "pipe_extern_csum", "pipe_extern_hash",
         "pipe_extern_rand", "pipe_extern_ts", "pipe_externs", "pipe_fifo", "pipe_delay",
         "pipe_vliw", "pipe_parser", "pipe_deparser", "pipe_stage"]
MODULES = sorted(p.stem for p in sources())
SMALL_STAGE = {"NUM_CONTAINERS": 4, "PREDICATE_BITS": 8, "WINDOW_BYTES": 16,
               "WINDOW_HEADROOM": 8, "GATEWAYS": 1, "TABLES": 1, "STATEFUL_ALUS": 1,
               "KEY_BITS": 16, "ACTION_CONTAINERS": 1, "WINDOW_LOADS": 1, "WINDOW_STORES": 1,
               "TABLE_DEPTH": 2, "REG_WORDS": 2, "MUL_MAX_BITS": 0, "CHECKSUM_UNITS": 0,
               "HASH_UNITS": 0, "TIMESTAMP_UNITS": 0}

# skip with the reason, or fail under REQUIRE_RTL=1 (tests/conftest.py)
needs_sim = pytest.mark.rtl
needs_iverilog = pytest.mark.rtl("iverilog")
needs_yosys = pytest.mark.rtl("yosys")


@pytest.fixture(autouse=True)
def _build_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RTL_BUILD_DIR", str(tmp_path_factory.getbasetemp() / "rtl_build"))


@needs_sim
@pytest.mark.parametrize("dut", UNITS)
def test_unit(dut: str, tmp_path: Path) -> None:
    """The unit's cocotb testbench passes against hw/pipeline (ops, state, model)."""
    importlib.import_module(f"rtl_models.tb.{dut}.test_{dut}").run(tmp_path)


@needs_sim
def test_top_worked_example(tmp_path: Path) -> None:
    """ipv4_drop.json on scapy traffic: bit-exact with PipelineModel, cycle-exact timing."""
    from rtl_models.tb.pipe_top.test_pipe_top import run

    run(tmp_path)


@needs_sim
def test_top_random_two_passes(tmp_path: Path) -> None:
    """A random 3-stage configuration on 2 physical stages (recirculation), control plane."""
    from rtl_models.tb.pipe_top.test_pipe_top import run_random

    run_random(tmp_path)


@needs_sim
@pytest.mark.parametrize(("passes", "out_depth", "pay_depth"), [(2, 8, 8), (1, 4, 8)],
                         ids=["two-passes", "one-pass"])
def test_top_buffers(tmp_path: Path, passes: int, out_depth: int, pay_depth: int) -> None:
    """Saturated batches that fill the packets-in-flight credits and the payload FIFO
    (s_axis_tready falls): every input start and first output beat is TimingModel's."""
    from rtl_models.tb.pipe_top.test_pipe_top import run_buffers

    run_buffers(tmp_path, passes, out_depth, pay_depth)


@needs_iverilog
@pytest.mark.parametrize("top", MODULES)
def test_lint_clean(top: str) -> None:
    """Each module compiles as Verilog-2005 under iverilog -Wall without a warning."""
    assert lint(top) == []


@needs_iverilog
@pytest.mark.parametrize("params", [
    {"TABLES": 0, "STATEFUL_ALUS": 0, "CHECKSUM_UNITS": 0, "HASH_UNITS": 0, "RANDOM_UNITS": 0,
     "TIMESTAMP_UNITS": 0, "WINDOW_LOADS": 0, "WINDOW_STORES": 0, "GATEWAYS": 0,
     "PUNT_CONTAINERS": 0, "NUM_STAGES": 2},
    {"NUM_PASSES": 3, "NUM_STAGES": 3, "BUS_BITS": 256, "WINDOW_BYTES": 128,
     "WINDOW_HEADROOM": 32, "NUM_CONTAINERS": 16, "PREDICATE_BITS": 32, "KEY_BITS": 128,
     "ACTION_CONTAINERS": 2, "PARSER_CYCLES": 6, "STAGE_CYCLES": 6, "DEPARSER_CYCLES": 3,
     "RECIRC_CYCLES": 0, "DIV": "full", "MUL_MAX_BITS": 64}], ids=["no-units", "small-wide"])
def test_lint_clean_other_targets(params: dict) -> None:
    """pipe_top stays warning-free for targets without units and for other sizes."""
    assert lint("pipe_top", params) == []


@needs_yosys
def test_yosys_alu(tmp_path: Path) -> None:
    """synth.ys synthesizes the ALU to gates and reports its cells."""
    stats = yosys_stats("pipe_alu", workdir=tmp_path)
    assert stats["pipe_alu"]["cells"] > 1000, stats


@needs_yosys
def test_yosys_stage(tmp_path: Path) -> None:
    """synth.ys (word level) runs on a small stage: cells per module and memory bits."""
    stats = yosys_stats("pipe_stage", SMALL_STAGE, workdir=tmp_path, quick=True)
    for module in ("pipe_stage", "pipe_vliw", "pipe_alu", "pipe_table", "pipe_stateful"):
        assert stats[module]["cells"] > 0, (module, stats)
    assert stats["pipe_table"]["memory_bits"] > 0 and stats["(total)"]["memory_bits"] > 0
