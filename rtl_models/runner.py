"""Build and run the cocotb testbenches of rtl_models with cocotb's Python runner (Icarus).

``run_testbench("pipe_alu", parameters={...})`` compiles every file of ``rtl/`` with the
DUT as top level (one build directory per DUT and parameter set, under ``build/rtl`` or
``$RTL_BUILD_DIR``; a build is reused while the sources are unchanged), runs the cocotb
module ``rtl_models.tb.<dut>.test_<dut>`` and raises ``RtlTestError`` when a cocotb test
fails. ``WAVES=1`` in the environment dumps an FST waveform into the build directory.
``lint`` compiles a module as Verilog-2005 with every warning; ``yosys_stats`` synthesizes
one with ``synth.ys`` and returns cells and memory bits per module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rtl_models.errors import RtlTestError
from rtl_models.tbkit.images import sv_literal

__all__ = ["RtlTestError", "build_root", "has_simulator", "has_yosys", "lint", "run_testbench",
           "sources", "yosys_stats"]

ROOT = Path(__file__).resolve().parent.parent
RTL_DIR = Path(__file__).resolve().parent / "rtl"
SYNTH_SCRIPT = Path(__file__).resolve().parent / "synth.ys"


def build_root() -> Path:
    return Path(os.environ.get("RTL_BUILD_DIR", ROOT / "build" / "rtl"))


def sources() -> list[Path]:
    return sorted(RTL_DIR.glob("*.v"))


def has_simulator() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def _key(parameters: Mapping[str, Any]) -> str:
    text = json.dumps({k: str(v) for k, v in sorted(parameters.items())})
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def run_testbench(dut: str, *, parameters: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None,
                  testcase: str | Sequence[str] | None = None,
                  waves: bool | None = None, build_dir: Path | None = None,
                  module: str | None = None, log_file: Path | None = None,
                  rebuild: bool = False) -> Path:
    """Build ``dut`` with ``parameters`` and run its cocotb tests (the module
    ``rtl_models.tb.<dut>.test_<dut>``, or ``module``); the results XML path.
    ``log_file``: the build's and the simulation's output go there instead of stdout.
    ``rebuild``: compile even when the build directory's simulator is newer than the
    sources (its parameters may differ: a build directory is keyed by them only when
    ``build_dir`` is not given)."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    params = {k: sv_literal(v) for k, v in (parameters or {}).items()}
    waves = bool(int(os.environ.get("WAVES", "0"))) if waves is None else waves
    bdir = build_dir or build_root() / f"{dut}-{_key(params)}{'-waves' if waves else ''}"
    runner = get_runner("icarus")
    runner.build(sources=sources(), includes=[RTL_DIR], hdl_toplevel=dut, parameters=params,
                 build_dir=bdir, timescale=("1ns", "1ps"), waves=waves, always=rebuild,
                 log_file=log_file.with_suffix(".build.log") if log_file else None)
    module = module or f"rtl_models.tb.{dut}.test_{dut}"
    xml = bdir / f"{module.rsplit('.', 1)[-1]}.results.xml"
    try:
        runner.test(test_module=module, hdl_toplevel=dut, build_dir=bdir, test_dir=bdir,
                    extra_env=dict(env or {}), testcase=testcase, waves=waves,
                    timescale=("1ns", "1ps"), results_xml=str(xml), log_file=log_file)
    except SystemExit as exc:  # the runner exits on a failed test when under pytest
        if not xml.exists():
            raise RtlTestError(f"{dut}: the simulator failed (exit status {exc.code}; "
                               f"build: {bdir})") from None
    n, failed = get_results(xml)
    if failed or not n:
        raise RtlTestError(f"{dut}: {failed} of {n} cocotb tests failed (results: {xml})")
    return xml


def lint(top: str, parameters: Mapping[str, Any] | None = None) -> list[str]:
    """Warnings and errors of ``iverilog -g2005 -Wall`` for ``top`` (empty: clean), but for
    whole-array sensitivity (wanted where a block reads a memory by a variable index)."""
    # every warning but one: a stage's VLIW words are read by an @* block over the whole
    # memory on purpose (64 part-select drivers of one wide net are Icarus' slowest case)
    cmd = ["iverilog", "-g2005", "-Wall", "-Wno-sensitivity-entire-array", "-I",
           str(RTL_DIR), "-s", top, "-o", os.devnull]
    cmd += [f"-P{top}.{k}={sv_literal(v)}" for k, v in (parameters or {}).items()]
    proc = subprocess.run(cmd + [str(p) for p in sources()], capture_output=True, text=True)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    if proc.returncode and not lines:
        lines = [f"iverilog exit status {proc.returncode}"]
    return lines


def has_yosys() -> bool:
    return shutil.which("yosys") is not None


def yosys_stats(top: str, parameters: Mapping[str, Any] | None = None, *,
                workdir: Path | None = None, quick: bool = False) -> dict[str, dict[str, int]]:
    """Synthesize ``top`` with synth.ys; per module: ``memory_bits`` (memories before they
    are mapped to flip-flops), ``cells`` and ``wire_bits`` (generic gates after ``synth``).

    The hierarchy is kept, so each module reports its own cells; ``"(total)"`` sums the
    design (every instance counted). ``workdir`` keeps the reports and the log; ``quick``
    stops before fine-grained mapping: cells are then word-level ($add, $mux, $dff, ...),
    seconds instead of minutes for a stage.
    """
    import tempfile

    work = Path(workdir or tempfile.mkdtemp(prefix=f"synth-{top}-"))
    work.mkdir(parents=True, exist_ok=True)
    sets = " ".join(f"-set {k} {_yosys_value(v)}" for k, v in (parameters or {}).items())
    chparams = f"chparam {sets} {top}" if sets else ""
    script = SYNTH_SCRIPT.read_text()
    for key, value in (("{SOURCES}", " ".join(str(p) for p in sources())),
                       ("{RTL_DIR}", str(RTL_DIR)), ("{TOP}", top), ("{CHPARAMS}", chparams),
                       ("{SYNTH_OPTS}", "-run :fine" if quick else ""),
                       ("{MEM_REPORT}", str(work / "memories.txt")),
                       ("{CELL_REPORT}", str(work / "cells.txt"))):
        script = script.replace(key, value)
    (work / "synth.ys").write_text(script)
    proc = subprocess.run(["yosys", "-q", "-l", str(work / "yosys.log"), "-s",
                           str(work / "synth.ys")], capture_output=True, text=True)
    if proc.returncode:
        raise RtlTestError(f"yosys failed on {top}: {(proc.stderr or proc.stdout)[-2000:]}")
    mem = _parse_stats((work / "memories.txt").read_text())
    cells = _parse_stats((work / "cells.txt").read_text())
    out: dict[str, dict[str, int]] = {}
    for name, numbers in cells.items():
        out[_short(name)] = {"memory_bits": mem.get(name, {}).get("memory_bits", 0),
                             "cells": numbers.get("cells", 0),
                             "wire_bits": numbers.get("wire_bits", 0)}
    if "(total)" in out:
        out["(total)"]["memory_bits"] = sum(v.get("memory_bits", 0) for k, v in mem.items()
                                            if k != "(total)" and _short(k) != "(total)")
    return out


def _short(name: str) -> str:
    """A module's name without yosys' parameter hash: paramod$1c52..\\pipe_table -> pipe_table."""
    return re.sub(r"^paramod(\$[0-9a-f]+)?\\", "", name).split("\\")[0]


def _yosys_value(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(int(value))


def _parse_stats(text: str) -> dict[str, dict[str, int]]:
    """Numbers of a yosys ``stat`` report per module; "(total)" from the hierarchy part."""
    out: dict[str, dict[str, int]] = {}
    module = ""
    for line in text.splitlines():
        m = re.match(r"\s*=== (.+) ===", line)
        if m:
            name = m.group(1).strip()
            module = "(total)" if name == "design hierarchy" else name.lstrip("$\\")
            out.setdefault(module, {})
            continue
        m = re.match(r"\s*Number of (cells|memory bits|wire bits):\s+(\d+)", line)
        if m and module:
            out[module][m.group(1).replace(" ", "_")] = int(m.group(2))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rtl_models.runner synth TOP [--quick] [NAME=VALUE ...]``: print sizes;
    ``lint TOP [NAME=VALUE ...]``: print iverilog -g2005 -Wall warnings."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("synth", "lint"):
        print("usage: python -m rtl_models.runner {synth|lint} TOP [NAME=VALUE ...]")
        return 2
    params: dict[str, Any] = {}
    quick = "--quick" in args
    args = [a for a in args if a != "--quick"]
    for a in args[2:]:
        k, _, v = a.partition("=")
        params[k] = int(v) if v.lstrip("-").isdigit() else v
    if args[0] == "lint":
        lines = lint(args[1], params)
        print("\n".join(lines) or f"{args[1]}: clean")
        return 1 if lines else 0
    stats = yosys_stats(args[1], params, quick=quick)
    print(f"{'module':40} {'cells':>10} {'memory bits':>12}")
    for name, n in sorted(stats.items(), key=lambda kv: kv[0] == "(total)"):
        print(f"{name:40} {n['cells']:>10} {n['memory_bits']:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
