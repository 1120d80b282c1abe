"""Co-simulation of one XDP program on the pipe target's RTL: mapper -> images -> Icarus.

The orchestration above the RTL (``rtl_models.system`` runs pipe_top on given images and
packets; this module maps, loads the scenario and checks against the VM).

``cosim(obj, program, target="pipe", packets=200, seed=1)``:

1. maps the program (``offload.mapper.map_program``); a ``host-only`` verdict is an error
   (there is nothing to put on the NIC);
2. loads the program's scenario (``examples/xdp/scenarios/<stem>.json``, or one given) into
   the configuration's tables and registers as the control plane would
   (``offload.equivalence.initial_pipeline_state``) and writes the memory images with
   those contents;
3. runs ``rtl_models/tb/pipe_top/test_pipe_system.py`` (``rtl_models.system``) on ``pipe_top`` under Icarus
   (cocotb's Python runner): the trace (``sim.packets.random_packets(packets, seed)``)
   with idle cycles and back-pressure, every output bit-exact against
   ``hw.pipeline.PipelineModel``; then 64-byte packets back to back for the cycle counts
   against ``TimingModel``; then the final table and register words;
4. closes the loop to the kernel's semantics: the same configuration, scenario and trace
   through ``offload.equivalence.check_equivalence`` (pipeline model + host part for the
   punted packets against the VM). The RTL equals the model packet for packet, and the
   model (+ host) equals the VM, so the RTL (+ host) equals the VM on the trace.

``CosimResult.to_dict`` is the ``offload rtl --json`` document and the regression's result
file; ``cycles_per_packet`` is the mean latency in cycles (first input beat to first output
beat) of the 64-byte batch, ``ii`` its sustained initiation interval, ``mpps`` the packet
rate that interval allows at the target clock, against ``LINE_RATE_MPPS`` (100 Gb/s of
64-byte frames).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ebpf.display import file_part, printable
from hw.ethernet import LINE_RATE_100G_MPPS as LINE_RATE_MPPS
from rtl_models.errors import CosimError

DEFAULT_PACKETS = 200
DEFAULT_SEED = 1
# modelling choice: the testbench's default stimulus (probability of an idle input cycle,
# of a cycle without output ready)
DEFAULT_IDLE = 0.2
DEFAULT_BACKPRESSURE = 0.2


@dataclass
class CosimResult:
    """One program's co-simulation; ``ok`` when RTL, model, timing and VM all agree."""

    program: str
    object: str
    target: str
    verdict: str
    stages: int
    passes: int
    clock_mhz: float
    seed: int
    packets: int = 0
    punted: int = 0
    table_hits: int = 0  # trace packets that hit a table entry (the scenario is exercised)
    mismatches: int = 0
    output_mismatches: int = 0
    state_mismatches: int = 0
    timing_mismatches: int = 0
    cycles_per_packet: float = 0.0
    model_cycles_per_packet: float = 0.0
    ii: float = 0.0
    model_ii: float = 0.0
    mpps: float = 0.0
    line_rate_mpps: float = LINE_RATE_MPPS
    vm_packets: int = 0
    vm_equivalence: str = ""
    differences: list[str] = field(default_factory=list)
    simulated_cycles: int = 0
    idle: float = 0.0
    """The random stimulus: probability of an idle input cycle, of an output not ready."""
    backpressure: float = 0.0
    wall_s: float = 0.0
    workdir: str = ""
    waves: bool = False

    @property
    def ok(self) -> bool:
        return (not self.mismatches and not self.timing_mismatches
                and self.vm_equivalence == "ok" and self.packets > 0)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["ok"] = self.ok
        for k in ("cycles_per_packet", "model_cycles_per_packet", "ii", "model_ii", "mpps",
                  "line_rate_mpps", "wall_s"):
            doc[k] = round(doc[k], 4)
        return doc


def row(result: CosimResult | dict[str, Any]) -> list[str]:
    """The regression table's cells for one result (names through ``printable``)."""
    r = result.to_dict() if isinstance(result, CosimResult) else result
    return [printable(f"{Path(r['object']).stem}:{r['program']}"), str(r["packets"]), str(r["mismatches"]),
            f"{r['cycles_per_packet']:.1f}", f"{r['ii']:.3f}", f"{r['mpps']:.1f}",
            f"{100 * r['mpps'] / r['line_rate_mpps']:.0f} %", "pass" if r["ok"] else "FAIL"]


ROW_HEADER = ["program", "packets", "mismatches", "cycles/packet", "II", "Mpps",
              "vs 148.8 Mpps", "result"]


@dataclass
class CosimJob:
    """A prepared co-simulation: the mapping, the images with the scenario state, the trace."""

    obj: Any
    program: str
    path: str
    target: Any
    report: Any
    scenario: Any
    trace: list[bytes]
    config: Any  # the configuration with the initial state, as written to the images
    workdir: Path
    seed: int
    idle: float
    backpressure: float
    timed: int

    @property
    def images(self) -> Path:
        return self.workdir / "images"


def prepare(obj_path: str | os.PathLike[str], program: str | None = None, *,
            target: str = "pipe", packets: int = DEFAULT_PACKETS, seed: int = DEFAULT_SEED,
            scenario: str | os.PathLike[str] | None = None,
            workdir: str | os.PathLike[str] | None = None, idle: float = DEFAULT_IDLE,
            backpressure: float = DEFAULT_BACKPRESSURE, timed: int = 64) -> CosimJob:
    """Steps 1 and 2: map, load the scenario state, write the images and the trace."""
    from ebpf.errors import EbpfError
    from ebpf.loader.elf import load
    from hw.targets import PipelineTarget
    from offload.equivalence import initial_pipeline_state
    from offload.errors import MapperError
    from offload.feasibility import VERDICT_HOST
    from offload.mapper import default_trace, get_target, map_program
    from rtl_models.system import write_trace
    from rtl_models.tbkit.images import write_images
    from sim.packets import random_packets

    path = os.fspath(obj_path)
    if packets < 1:
        raise CosimError(f"--packets must be at least 1, got {packets}")
    try:
        tgt = get_target(target)
        if not isinstance(tgt, PipelineTarget):
            raise CosimError(f"target {tgt.name} is a {tgt.kind} target: the RTL implements "
                             f"the pipeline targets only")
        obj = load(path)
        prog = obj.get_xdp_program(program)
        scen, trace = default_trace(path, scenario, random_packets(packets, seed=seed))
        report = map_program(obj, tgt, prog.name, scenario=scen, packets=trace,
                             equivalence=False)
    except (MapperError, EbpfError) as exc:
        raise CosimError(str(exc)) from exc
    except OSError as exc:
        raise CosimError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if report.verdict == VERDICT_HOST or report.config is None:
        raise CosimError(f"{path}: {prog.name} does not map onto {tgt.name} "
                         f"({report.verdict}: {report.explanation}); nothing to co-simulate")
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cosim-"))
    work.mkdir(parents=True, exist_ok=True)
    model = initial_pipeline_state(obj, prog.name, report.config, scen)
    cfg = write_images(model.state.to_config(), work / "images")
    write_trace(work, trace, cfg.target.min_packet_bytes)
    return CosimJob(obj=obj, program=prog.name, path=path, target=tgt, report=report,
                    scenario=scen, trace=trace, config=cfg, workdir=work, seed=seed,
                    idle=idle, backpressure=backpressure, timed=timed)


def simulate(job: CosimJob, *, waves: bool | None = None, quiet: bool = False) -> CosimResult:
    """Steps 3 and 4: the RTL against the model, then the model (+ host) against the VM.
    ``quiet``: the simulator's output goes to ``<workdir>/sim.log`` instead of stdout."""
    from offload.equivalence import check_equivalence
    from offload.mapper import written_maps
    from rtl_models.system import run_system

    started = time.perf_counter()
    work, cfg = job.workdir, job.config
    rtl = run_system(cfg, job.images, work, label=f"{job.path}: {job.program}", seed=job.seed,
                     idle=job.idle, backpressure=job.backpressure, timed=job.timed,
                     waves=waves, quiet=quiet)
    eq = check_equivalence(job.obj, job.program, job.report.config, job.scenario, job.trace,
                           written_maps(_analysis(job.obj, job.program)))
    lat, model_lat = rtl["latency_cycles"], rtl["model_latency_cycles"]
    t = cfg.target
    res = CosimResult(
        program=job.program, object=job.path, target=job.target.name,
        verdict=job.report.verdict, stages=job.report.stages or 0, passes=cfg.num_passes,
        clock_mhz=t.clock_mhz, seed=job.seed, packets=rtl["packets"], punted=rtl["punted"],
        table_hits=rtl["table_hits"],
        mismatches=rtl["mismatches"], output_mismatches=rtl["output_mismatches"],
        state_mismatches=rtl["state_mismatches"], timing_mismatches=rtl["timing_mismatches"],
        cycles_per_packet=sum(lat) / len(lat) if lat else 0.0,
        model_cycles_per_packet=sum(model_lat) / len(model_lat) if model_lat else 0.0,
        ii=rtl["ii"], model_ii=rtl["model_ii"],
        mpps=t.clock_mhz / rtl["ii"] if rtl["ii"] else 0.0,
        vm_packets=eq.packets, vm_equivalence="ok" if eq.ok else eq.failure,
        differences=list(rtl["differences"]) + ([] if eq.ok else [f"VM: {eq.failure}"]),
        simulated_cycles=rtl["cycles"], idle=job.idle, backpressure=job.backpressure,
        workdir=str(work), waves=bool(
            waves if waves is not None else int(os.environ.get("WAVES", "0"))))
    res.wall_s = time.perf_counter() - started
    return res


def cosim(obj_path: str | os.PathLike[str], program: str | None = None, *,
          waves: bool | None = None, quiet: bool = False, **options: Any) -> CosimResult:
    """Co-simulate ``program`` of the object (``prepare`` options: target, packets, seed,
    scenario, workdir, idle, backpressure, timed); see the module docstring."""
    return simulate(prepare(obj_path, program, **options), waves=waves, quiet=quiet)


def _analysis(obj: Any, program: str) -> Any:
    from ebpf.analysis import analyze

    return analyze(obj.get_xdp_program(program), obj)


def write_result(result: CosimResult, directory: str | os.PathLike[str]) -> Path:
    """``<directory>/<object stem>.<program>.json``: what make regression and the report read."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{file_part(f'{Path(result.object).stem}.{result.program}')}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    tmp.replace(path)
    return path
