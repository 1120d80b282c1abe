"""Gather the evidence on XDP programs into one JSON-ready document (docs/report-schema.md).

Per program of every object: what it is (size, maps, helpers, source files), its control
flow graph, feasibility on every target with the reasons' source lines, on pipeline targets
the mapper's answer (``offload.mapper``: lowering, cuts, stage map, equivalence; read by
``offload.report.mapping``), the blocks that stay on the NIC, the punted fraction, the
run-to-completion cost models (``hw.rtc``), the RTL results when given, the host (verifier,
JIT image, BPF_PROG_TEST_RUN timing where bpf(2) is permitted) and the simulation runs
(``offload.report.simulate``). Nothing here formats; ``offload.report.render`` does.

Bad input (an unknown target, a broken ELF, a missing map state, a malformed RTL result) is
found by ``plan`` before any slow work and raises the package's error with one line; a
failure inside one piece of evidence (a simulation, the kernel) is recorded in the document
as ``error`` and the rest goes on.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ebpf.display import file_part
from ebpf.errors import EbpfError
from hw.errors import HwError
from hw.ethernet import LINE_RATE_100G_MPPS
from offload.errors import MapperError
from offload.report import mapping
from offload.report.simulate import (
    DEFAULT_LATENCY_TRAFFIC,
    DEFAULT_SIZES,
    count_runs,
    simulate_program,
)
from offload.report.source import display_name, display_path, line_anchor, main_file, source_files

SCHEMA = "xdp-offload-report/1"
RTL_KEYS = ("packets", "mismatches", "cycles_per_packet", "ii", "mpps")
"""The keys every RTL result file must have: numbers >= 0."""
RTL_NUMBERS = ("output_mismatches", "state_mismatches", "timing_mismatches", "punted",
               "table_hits", "model_cycles_per_packet", "model_ii", "line_rate_mpps", "vm_packets", "seed",
               "stages", "passes", "clock_mhz", "simulated_cycles", "idle", "backpressure",
               "wall_s")
"""Optional numbers of ``offload.cosim.CosimResult.to_dict()`` (null when absent)."""
RTL_STRINGS = ("program", "object", "target", "verdict", "vm_equivalence", "workdir")

Step = Callable[[str], None]


class ReportError(MapperError):
    """Report input that cannot be used (RTL results, output folder); one line."""


@dataclass(frozen=True)
class ReportOptions:
    """What to gather. Packet counts are per simulation run / per program."""

    targets: tuple[str, ...] = ()
    """Target names or profile paths; empty: every known target. The host is always added."""
    target_files: tuple[str, ...] = ()
    packets: int | None = None
    """Packets per simulation run; None (the default): steady state, the simulator's default
    run length (``sim.scenario.run``: at least DEFAULT_DURATION_NS of traffic, warm-up left
    out of ``metrics.steady``, run again longer until the steady rate converges), so an
    overloaded target shows its steady losses, not what its queues absorbed in a transient."""
    sizes: tuple[int, ...] = DEFAULT_SIZES
    latency_traffic: str = DEFAULT_LATENCY_TRAFFIC
    trace_packets: int = 64
    host_packets: int = 16
    host_repeat: int = 200
    seed: int = 1
    maps_dir: str | None = None
    rtl_results: str | None = None
    mapper_time_limit_s: float = 10.0
    """CP-SAT time limit per program and pipeline target (the mapper's default)."""
    simulate: bool = True
    executor: str = "auto"
    """What runs every simulated packet (``sim.scenario.executor_for``: auto, compiled, vm)."""

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["targets"], doc["sizes"] = list(self.targets), list(self.sizes)
        doc["target_files"] = list(self.target_files)
        return doc


@dataclass(frozen=True)
class ProgramSpec:
    """One program of one object, with its map state and RTL result file (when found)."""

    path: str
    program: str
    id: str
    maps: str | None = None
    rtl: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """Everything ``plan`` checked: the programs, the targets and the options."""

    programs: list[ProgramSpec]
    targets: list[Any]
    target_files: tuple[str, ...]
    options: ReportOptions
    # programs left out: {object, program, section, type, reason} (not XDP, or a section
    # the kernel refuses)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def steps_per_program(self) -> int:
        """Progress steps ``collect_program`` reports per program."""
        return 4 + (count_runs(len(self.targets), self.options.sizes)
                    if self.options.simulate else 0)

    def num_steps(self) -> int:
        """Progress steps ``collect_program`` reports per program, summed."""
        return self.steps_per_program() * len(self.programs)


# --- planning: every input checked before any slow work ----------------------------------

def _looks_like_path(name: str) -> bool:
    return os.sep in name or name.endswith(".toml")


def resolve_targets(names: Sequence[str], target_files: Sequence[str] = ()
                    ) -> tuple[list[Any], tuple[str, ...]]:
    """The targets (``TargetError`` for an unknown name), the host appended when missing,
    and the profile files the simulator needs to find them again by name."""
    from hw.targets import list_targets, load_target

    files = list(target_files)
    files += [n for n in names if _looks_like_path(n) and n not in files]
    if names:
        targets = [load_target(n, extra=files) for n in names]
    else:
        targets = list_targets(extra=files)
    seen: dict[str, Any] = {}
    for t in targets:
        seen.setdefault(t.name, t)
    targets = list(seen.values())
    if not any(t.location == "host" for t in targets):
        host = next((t for t in list_targets(extra=files) if t.location == "host"), None)
        if host is not None:
            targets.append(host)
    return targets, tuple(files)


def _rtl_number(path: Path, key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)) or value < 0:
        raise ReportError(f"{path}: {key}: expected a number >= 0, got {value!r}")
    return value


def rtl_label(rtl: dict[str, Any]) -> tuple[str, float | None]:
    """The index's RTL cell and its sort key: ``pass · 55 cyc · II 1`` (key: the cycles per
    packet), ``FAIL 3`` (key: minus the problems, so failures sort first), ``not run``
    (no key: last)."""
    if rtl.get("status") != "ok":
        return "not run", None
    if not rtl["passed"]:
        problems = rtl["mismatches"] + (rtl.get("timing_mismatches") or 0)
        if problems:
            return f"FAIL {problems:g}", -float(problems)
        vm = rtl.get("vm_equivalence")
        return ("FAIL (VM)" if vm not in (None, "ok") else "FAIL"), -0.5
    return (f"pass · {rtl['cycles_per_packet']:.4g} cyc · II {rtl['ii']:.3g}",
            float(rtl["cycles_per_packet"]))


def read_rtl_result(path: Path, program: str | None = None) -> dict[str, Any]:
    """One RTL result file (``offload.cosim.CosimResult.to_dict()``, or any object with
    the five ``RTL_KEYS``); ``ReportError`` naming the file and key on bad input, and when
    the file names another ``program``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from exc
    except RecursionError as exc:
        raise ReportError(f"{path}: not JSON we read: nested too deeply") from exc
    if not isinstance(doc, dict):
        raise ReportError(f"{path}: expected a JSON object with {', '.join(RTL_KEYS)}")
    out: dict[str, Any] = {"status": "ok", "source": str(path)}
    for key in RTL_KEYS:
        out[key] = _rtl_number(path, key, doc.get(key))
    for key in RTL_NUMBERS:
        value = doc.get(key)
        out[key] = None if value is None else _rtl_number(path, key, value)
    for key in RTL_STRINGS:
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise ReportError(f"{path}: {key}: expected a string, got {value!r}")
        out[key] = value
    if program is not None and out["program"] not in (None, program):
        raise ReportError(f"{path}: program: expected {program!r}, got {out['program']!r}")
    diffs = doc.get("differences", [])
    if not isinstance(diffs, list) or not all(isinstance(d, str) for d in diffs):
        raise ReportError(f"{path}: differences: expected a list of strings, got {diffs!r}")
    out["differences"] = diffs
    ok = doc.get("ok")
    if ok is not None and not isinstance(ok, bool):
        raise ReportError(f"{path}: ok: expected true or false, got {ok!r}")
    if ok is None:  # a file without the co-simulation's verdict: no mismatch is a pass
        ok = out["mismatches"] == 0 and out["packets"] > 0 and not out["timing_mismatches"]
    out["passed"] = ok
    line = out["line_rate_mpps"] or LINE_RATE_100G_MPPS
    out["line_rate_mpps"] = line
    out["line_rate_share"] = out["mpps"] / line
    out["label"], out["sort"] = rtl_label(out)
    known = {*RTL_KEYS, *RTL_NUMBERS, *RTL_STRINGS, "differences", "ok"}
    out["extra"] = {k: v for k, v in doc.items() if k not in known}
    return out


def _rtl_for(options: ReportOptions, program: str, stem: str) -> dict[str, Any]:
    """The program's RTL result: ``DIR/<stem>.<program>.json`` (what ``offload rtl
    --results`` writes, through ``file_part``), else ``DIR/<program>.json``, else ``DIR/<stem>.json`` when it is
    for this program (or names none)."""
    if options.rtl_results is None:
        return {"status": "not run", "reason": "no RTL results given (offload report "
                                               "--rtl-results DIR)"}
    base = Path(options.rtl_results)
    for name in (file_part(f"{stem}.{program}"), file_part(program)):
        f = base / f"{name}.json"
        if f.is_file():
            return read_rtl_result(f, program)
    f = base / f"{stem}.json"
    if f.is_file():
        res = read_rtl_result(f)
        if res["program"] in (None, program):
            return res
    return {"status": "not run",
            "reason": f"no {stem}.{program}.json (nor {program}.json) in "
                      f"{options.rtl_results}"}


def _rtl_not_run_why(rtl: dict[str, Any], path: str, results: str | None,
                     feasibility: list[dict[str, Any]]) -> dict[str, Any]:
    """A missing RTL result with what to do: a host-only program has nothing to co-simulate
    (the pipelines' final verdicts), another can be run with ``offload rtl``."""
    if rtl.get("status") == "ok":
        return rtl
    pipes = [f for f in feasibility if f.get("kind") == "pipeline"]
    if pipes and all(f.get("final_verdict") == "host-only" for f in pipes):
        names = ", ".join(f["target"] for f in pipes)
        hint = f"host-only on {names}: nothing to put on the NIC, so nothing to co-simulate"
    else:
        hint = f"`offload rtl {display_path(path)} --results {results or 'DIR'}` makes one"
    return {**rtl, "reason": f"{rtl['reason']}; {hint}"}


def plan(objects: Sequence[str], options: ReportOptions) -> Plan:
    """Check every input (objects, targets, map states, RTL results) and list the programs."""
    from ebpf.loader.elf import load

    if not objects:
        raise ReportError("no objects given")
    if (options.packets is not None and options.packets < 1) or options.trace_packets < 1 or options.host_packets < 1 \
            or options.host_repeat < 1:
        raise ReportError("packet counts and repeat must be at least 1")
    if options.maps_dir is not None and not Path(options.maps_dir).is_dir():
        raise ReportError(f"{options.maps_dir}: map state folder not found")
    if options.rtl_results is not None and not Path(options.rtl_results).is_dir():
        raise ReportError(f"{options.rtl_results}: RTL results folder not found")
    targets, files = resolve_targets(options.targets, options.target_files)
    if options.simulate:
        from sim.spec import parse_traffic

        parse_traffic(options.latency_traffic)
        for size in options.sizes:
            parse_traffic(f"{size}B@100%")
    specs: list[ProgramSpec] = []
    skipped: list[dict[str, str]] = []
    ids: set[str] = set()
    for path in objects:
        obj = load(path)
        if not obj.programs:
            raise ReportError(f"{path}: no programs in the object")
        skipped += [{"object": display_path(path), "program": prog.name,
                     "section": prog.section, "type": prog.prog_type, "reason": why}
                    for prog, why in obj.iter_skipped_programs()]
        stem = Path(path).stem
        maps = None
        if options.maps_dir is not None:
            candidate = Path(options.maps_dir) / f"{stem}.json"
            if candidate.is_file():
                from ebpf.differential import Scenario as MapScenario

                MapScenario.load(candidate)  # MapStateError on a bad file, now
                maps = str(candidate)
        for prog in obj.iter_xdp_programs():
            # The id names the page and plot files: a name from the object may hold '/'.
            base = file_part(f"{stem}.{prog.name}")
            pid = base
            n = 2
            while pid in ids:
                pid, n = f"{base}.{n}", n + 1
            ids.add(pid)
            specs.append(ProgramSpec(str(path), prog.name, pid, maps,
                                     _rtl_for(options, prog.name, stem)))
    if not specs:
        raise ReportError("no XDP programs in the objects given: "
                          + "; ".join(f"{s['object']}: {s['reason']}" for s in skipped))
    return Plan(specs, targets, files, options, skipped)


# --- one program -------------------------------------------------------------------------

def _one_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _summary(spec: ProgramSpec, obj: Any, prog: Any) -> dict[str, Any]:
    from offload.inspect import inspect_doc

    doc = inspect_doc(spec.path)
    entry = next(p for p in doc["programs"] if p["name"] == prog.name)
    used = set(entry["maps"])
    return {
        "section": entry["section"], "type": entry["type"],
        "insns": entry["insn_count"], "linked_insns": entry["linked_insn_count"],
        "subprograms": entry["subprograms"], "helpers": entry["helpers"],
        "maps": [m for m in doc["maps"] if m["name"] in used],
        "license": doc["license"],
    }


def _cfg_doc(an: Any, prog: Any, main: str | None) -> dict[str, Any]:
    """Functions -> blocks with their first source position (for drawing and links)."""
    functions = []
    for fcfg in an.cfg.functions.values():
        blocks = []
        for start in sorted(fcfg.blocks):
            b = fcfg.blocks[start]
            lines = sorted({(ln.file, ln.line) for s in b.slots
                            if (ln := prog.lines.get(s)) is not None and ln.line > 0},
                           key=lambda x: (x[0] != main, x[1]))
            first = prog.source_line(b.start)
            pos = None
            if first is not None:
                pos = {"file": first.file, "line": first.line,
                       "anchor": line_anchor(first.file, first.line, main)}
            blocks.append({"start": b.start, "end": b.end, "insns": len(b.slots),
                           "term": b.term, "succs": list(b.succs), "callee": b.callee,
                           "position": pos,
                           "lines": [ln for f, ln in lines if f == (pos or {}).get("file")]})
        functions.append({"name": fcfg.name, "entry": fcfg.entry,
                          "reachable": list(fcfg.rpo), "blocks": blocks})
    return {"entry": an.cfg.entry, "functions": functions}


def _trace_packets(spec: ProgramSpec, obj: Any, prog: Any, options: ReportOptions
                   ) -> tuple[list[Any], str | None]:
    """VM traces of seeded random packets through the program, maps from the state."""
    from ebpf.differential import Scenario as MapScenario
    from ebpf.differential import VmSide
    from sim.packets import random_packets

    state = MapScenario.load(spec.maps) if spec.maps else MapScenario()
    side = VmSide(obj, prog.name, state, seed=options.seed)
    traces = []
    for i, packet in enumerate(random_packets(options.trace_packets, options.seed)):
        try:
            traces.append(side.run(packet).trace)
        except EbpfError as exc:
            return traces, f"packet {i}: {_one_line(exc)}"
    return traces, None


def _punted_by_traces(prog: Any, programs: dict[str, Any], traces: Sequence[Any],
                      result: Any) -> float | None:
    """Share of the traced packets that reach an infeasible construct (punted)."""
    from hw.rtc.common import iter_executed_blocks
    from offload.feasibility import VERDICT_FULL, VERDICT_HOST

    if not traces:
        return None
    if result.verdict == VERDICT_FULL:
        return 0.0
    if result.verdict == VERDICT_HOST:
        return 1.0
    bad = {s for r in result.reasons if r.scope == "site" for s in r.insns}
    cfgs: dict[str, Any] = {}
    punted = 0
    for t in traces:
        for p, block in iter_executed_blocks(prog, t, programs, cfgs):
            if p is prog and bad.intersection(block.slots):
                punted += 1
                break
    return punted / len(traces)


def _annotate(reasons: list[dict[str, Any]], main: str | None) -> list[dict[str, Any]]:
    for r in reasons:
        r["anchor"] = line_anchor(r["file"], r["line"], main)
        r["where"] = f"{os.path.basename(r['file'])}:{r['line']}" if r["file"] else "-"
    return reasons


def _feasibility(obj: Any, prog: Any, targets: Sequence[Any], traces: Sequence[Any],
                 main: str | None, maps: str | None, options: ReportOptions
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per target: the check, the mapper's answer (pipelines), the block classes, the stage
    map, the punted fraction and the simulator's NIC cost; and the CFG."""
    from ebpf.analysis import analyze
    from offload.feasibility import check

    an = analyze(prog, obj)
    programs = {p.name: p for p in obj.programs}
    out = []
    for t in targets:
        res = check(obj, prog.name, t, analysis=an)
        doc = res.to_dict()
        _annotate(doc["reasons"], main)
        view = None
        if t.kind == "pipeline":
            view = mapping.ask_mapper(obj, prog.name, t, scenario=maps,
                                      time_limit_s=options.mapper_time_limit_s)
        final = mapping.as_check(view, res) if view is not None and view.available else res
        classes = mapping.derive_blocks(an, final)
        by_class = {c: sorted(s for s, k in classes.items() if k == c)
                    for c in mapping.BLOCK_CLASSES}
        try:
            punted = _punted_by_traces(prog, programs, traces, final)
        except HwError as exc:
            punted, doc["punted_error"] = None, _one_line(exc)
        punted_source = f"VM traces ({len(traces)} packets)"
        mapped = view.extra if view is not None and view.available else None
        if mapped and mapped.get("punted_fraction") is not None:
            punted = mapped["punted_fraction"]
            punted_source = (f"mapper: pipeline model and VM on {mapped.get('packets')} "
                             f"packets (equivalence run)")
        doc.update({"kind": t.kind, "final_verdict": final.verdict,
                    "final_source": "mapper" if final is not res else "feasibility check",
                    "blocks": by_class, "nic_blocks": by_class[mapping.NIC],
                    "blocks_source": ("mapper's verdict and cuts" if final is not res
                                      else "feasibility reasons"),
                    "punted_fraction": punted, "punted_source": punted_source})
        if view is not None:
            if view.available:
                doc["mapper"] = {"available": True, **view.extra}
                doc["mapper"].pop("config", None)
                _annotate(doc["mapper"].get("reasons", []), main)
                known = {(r["insn"], r["kind"]) for r in doc["reasons"]}
                doc["lowering_reasons"] = [r for r in doc["mapper"].get("reasons", [])
                                           if (r["insn"], r["kind"]) not in known]
            else:
                doc["mapper"] = {"available": False, "reason": view.reason}
            doc["stage_map"] = ({"available": True, "source": "offload.mapper",
                                 **view.stage_map}
                                if view.available and view.stage_map is not None else
                                {"available": False, "reason": view.reason if not
                                 view.available else "the mapper made no schedule: "
                                 + (view.extra.get("explanation") or final.verdict)})
        if t.location != "host":
            doc["nic_cost"] = mapping.nic_cost(res, t, view)
        out.append(doc)
    return out, {"cfg": _cfg_doc(an, prog, main)}


def _host(spec: ProgramSpec, options: ReportOptions, permitted: tuple[bool, str]
          ) -> tuple[dict[str, Any], Any]:
    """Verifier outcome, JIT image and test_run timing; the measurement for the cost model."""
    from ebpf.differential import Scenario as MapScenario
    from ebpf.kernel.bridge import KernelObject
    from ebpf.kernel.results import KernelLoadError
    from hw.rtc.common import RtcError
    from hw.rtc.cpu import measure_host
    from sim.packets import random_packets

    ok, why = permitted
    doc: dict[str, Any] = {"permitted": ok, "reason": why, "kernel": platform.release()}
    if not ok:
        doc["verifier"] = {"status": "not run", "message": f"bpf(2) not usable here: {why}"}
        return doc, None
    scenario = MapScenario.load(spec.maps) if spec.maps else MapScenario()
    state = scenario.state if spec.maps else None
    if scenario.get_max_entries():
        return _host_sized(spec, scenario), None
    try:
        with KernelObject(spec.path, state=state) as k:
            doc["verifier"] = {"status": "accepted", "message": "loaded through libbpf"}
            doc["prog_info"] = asdict(k.prog_info(spec.program))
    except KernelLoadError as exc:
        doc["verifier"] = {"status": "rejected", "message": _one_line(exc)}
        return doc, None
    except EbpfError as exc:
        doc["verifier"] = {"status": "error", "message": _one_line(exc)}
        return doc, None
    try:
        m = measure_host(spec.path, spec.program,
                         random_packets(options.host_packets, options.seed),
                         options.host_repeat, state=state)
    except (RtcError, EbpfError) as exc:
        doc["measurement"] = {"error": _one_line(exc)}
        return doc, None
    doc["measurement"] = m.to_dict() | {"min_ns": min(m.samples_ns),
                                        "max_ns": max(m.samples_ns)}
    return doc, m


def _host_sized(spec: ProgramSpec, scenario: Any) -> dict[str, Any]:
    """The host section of an object whose state file sizes its maps: libbpf would create
    them as the ELF declares, so the verifier runs on our sized load
    (``ebpf.kernel.raw.RawKernelObject``); the timing, which loads through libbpf, is not
    measured."""
    from ebpf.differential import size_maps
    from ebpf.kernel.raw import RawKernelObject
    from ebpf.kernel.results import KernelLoadError
    from ebpf.loader.elf import load

    doc: dict[str, Any] = {"permitted": True, "reason": "", "kernel": platform.release()}
    try:
        with RawKernelObject(size_maps(load(spec.path), scenario), state=scenario.state) as k:
            doc["verifier"] = {"status": "accepted", "message": "loaded with the state "
                                                                 "file's map sizes"}
            doc["prog_info"] = asdict(k.prog_info(spec.program))
    except KernelLoadError as exc:
        doc["verifier"] = {"status": "rejected", "message": _one_line(exc)}
        return doc
    except EbpfError as exc:
        doc["verifier"] = {"status": "error", "message": _one_line(exc)}
        return doc
    doc["measurement"] = {"error": "not measured: the timing loads through libbpf, which "
                                   "creates the loader-sized maps as the ELF declares them"}
    return doc


def _costs(obj: Any, prog: Any, targets: Sequence[Any], traces: Sequence[Any],
           measurement: Any, stage_maps: dict[str, Any]) -> list[dict[str, Any]]:
    """Per target, the run-to-completion model's estimate (64 B frames); for a pipeline,
    the timing of the mapper's schedule."""
    from hw.rtc import estimate_cpu, estimate_npu, estimate_vliw, wire_mpps

    out = []
    for t in targets:
        entry: dict[str, Any] = {"target": t.name, "kind": t.kind}
        try:
            if t.kind == "pipeline":
                sm = stage_maps.get(t.name) or {}
                timing = sm.get("timing") if sm.get("available") else None
                if timing:
                    line = wire_mpps(t.line_rate_gbps, 64)
                    entry.update(status="ok", source="mapper", timing=timing,
                                 ns_per_packet=timing["ii_cycles"] * t.cycle_ns,
                                 cycles_per_packet=timing["ii_cycles"],
                                 mpps_per_unit=timing["mpps"], units=1,
                                 mpps_total=min(timing["mpps"], line), line_rate_mpps=line,
                                 bound="line rate" if timing["mpps"] > line else
                                 f"initiation interval {timing['ii_cycles']} cycle(s)",
                                 feasible=sm.get("feasible", True))
                else:
                    entry.update(status="n/a", reason="a pipeline's rate comes from its "
                                 "stage map (the mapper) and the simulation below")
            elif not traces:
                entry.update(status="n/a", reason="no VM traces")
            elif t.kind == "npu":
                entry.update(status="ok", **estimate_npu(t, obj, prog, traces).to_dict())
            elif t.kind == "vliw":
                entry.update(status="ok", **estimate_vliw(t, obj, prog, traces).to_dict())
            elif t.kind == "cpu":
                entry.update(status="ok", **estimate_cpu(t, prog.name, measurement=measurement,
                                                         traces=traces).to_dict())
        except (HwError, EbpfError) as exc:
            entry.update(status="error", reason=_one_line(exc))
        entry.get("details", {}).pop("feasibility", None)
        out.append(entry)
    return out


def collect_program(spec: ProgramSpec, plan_: Plan, *, permitted: tuple[bool, str],
                    step: Step | None = None) -> dict[str, Any]:
    """The whole evidence for one program (docs/report-schema.md, ``programs[]``)."""
    from ebpf.differential import Scenario as MapScenario
    from ebpf.differential import size_maps
    from ebpf.loader.elf import load

    options = plan_.options
    step = step or (lambda _msg: None)
    # maps its loader sizes (max_entries 0) take the state file's sizes, as everywhere
    obj = size_maps(load(spec.path), MapScenario.load(spec.maps) if spec.maps else MapScenario())
    prog = obj.get_xdp_program(spec.program)
    main = main_file(prog)
    doc: dict[str, Any] = {
        "id": spec.id, "name": display_name(spec.path, prog.name), "object": spec.path,
        "object_display": display_path(spec.path), "program": prog.name, "maps_state": spec.maps,
        "summary": _summary(spec, obj, prog),
        "sources": [sf.to_dict() for sf in source_files(prog, spec.path)],
        "rtl": spec.rtl,
    }
    step(f"{prog.name}: VM traces")
    traces, trace_error = _trace_packets(spec, obj, prog, options)
    doc["traces"] = {"packets": len(traces), "seed": options.seed, "error": trace_error}
    step(f"{prog.name}: feasibility")
    try:
        doc["feasibility"], extra = _feasibility(obj, prog, plan_.targets, traces, main,
                                                 spec.maps, options)
        doc["cfg"] = extra["cfg"]
    except MapperError as exc:
        doc["feasibility"], doc["cfg"] = [], None
        doc["feasibility_error"] = _one_line(exc)
    doc["rtl"] = _rtl_not_run_why(spec.rtl, spec.path, options.rtl_results,
                                  doc["feasibility"])
    step(f"{prog.name}: host")
    doc["host"], measurement = _host(spec, options, permitted)
    step(f"{prog.name}: cost models")
    doc["costs"] = _costs(obj, prog, plan_.targets, traces, measurement,
                          {f["target"]: f.get("stage_map") for f in doc["feasibility"]})
    nic_costs = {f["target"]: f.pop("nic_cost") for f in doc["feasibility"]
                 if f.get("nic_cost") is not None}
    if options.simulate:
        doc["simulation"] = simulate_program(
            spec.path, prog.name, spec.maps, plan_.targets, packets=options.packets,
            seed=options.seed, sizes=options.sizes, latency_traffic=options.latency_traffic,
            target_files=plan_.target_files, nic_costs=nic_costs, step=step,
            executor=options.executor)
        doc["simulation"]["nic_cost_source"] = {
            name: cost.source for name, cost in nic_costs.items()}
        doc["simulation"]["nic_cost"] = {
            name: cost.describe() for name, cost in nic_costs.items()}
    else:
        doc["simulation"] = None
    return doc


# --- the whole document ------------------------------------------------------------------

def _target_doc(t: Any) -> dict[str, Any]:
    return {"name": t.name, "kind": t.kind, "location": t.location,
            "description": t.description, "clock_mhz": t.clock_mhz,
            "line_rate_gbps": t.line_rate_gbps}


def _run_at(sim: dict[str, Any] | None, target: str, size: int) -> dict[str, Any] | None:
    if not sim:
        return None
    return next((r for r in sim["sweep"] if r["target"] == target and r["size"] == size
                 and "error" not in r), None)


def comparison_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (program, target): what the index table shows and sorts."""
    host = next((t["name"] for t in doc["targets"] if t["location"] == "host"), None)
    rows = []
    for p in doc["programs"]:
        sim = p.get("simulation")
        sizes = sim["sizes"] if sim else []
        small, large = (min(sizes), max(sizes)) if sizes else (None, None)
        host_small = _run_at(sim, host, small) if host and small else None
        host_mpps = host_small["metrics"]["achieved"]["mpps"] if host_small else None
        lat_by_target = {r["target"]: r for r in (sim or {}).get("latency", [])
                         if "error" not in r}
        host_lat = lat_by_target.get(host) if host else None
        costs = {c["target"]: c for c in p.get("costs", [])}
        for f in p.get("feasibility", []):
            t = f["target"]
            st = f["stats"]
            reach = st.get("reachable_insns") or 0
            row: dict[str, Any] = {
                "id": p["id"], "name": p["name"], "program": p["program"],
                "object": p["object_display"],
                "target": t, "verdict": f.get("final_verdict", f["verdict"]),
                "check_verdict": f["verdict"], "verdict_source": f.get("final_source"),
                "reasons": len((f.get("mapper") or {}).get("reasons", f["reasons"])),
                "nic_insns_fraction": (st["nic_insns"] / reach) if reach else None,
                "punted_fraction": f.get("punted_fraction"),
            }
            c = costs.get(t, {})
            row["model_mpps"] = c.get("mpps_total") if c.get("status") == "ok" else None
            r_small = _run_at(sim, t, small) if small else None
            r_large = _run_at(sim, t, large) if large else None
            row["sim_mpps_small"] = r_small["metrics"]["achieved"]["mpps"] if r_small else None
            row["sim_gbps_large"] = r_large["metrics"]["achieved"]["gbps"] if r_large else None
            row["sim_punted_fraction"] = r_small["punted_fraction"] if r_small else None
            row["sim_punts_fewer"] = bool(
                row["punted_fraction"] is not None and row["sim_punted_fraction"] is not None
                and row["punted_fraction"] - row["sim_punted_fraction"] > 0.05)
            row["speedup_vs_host"] = (row["sim_mpps_small"] / host_mpps
                                      if row["sim_mpps_small"] and host_mpps else None)
            lat = lat_by_target.get(t)
            row["p99_ns"] = lat["metrics"]["latency_ns"].get("p99") if lat else None
            row["host_cores"] = lat["metrics"]["host_cores_needed"] if lat else None
            row["host_cores_saved"] = (host_lat["metrics"]["host_cores_needed"]
                                       - row["host_cores"]
                                       if lat and host_lat else None)
            rows.append(row)
    return rows


def new_document(plan_: Plan, permitted: tuple[bool, str]) -> dict[str, Any]:
    """The document's head (everything but ``programs`` and ``comparison``)."""
    return {
        "schema": SCHEMA,
        "generator": "offload report",
        "options": plan_.options.to_dict(),
        "machine": {"kernel": platform.release(), "machine": platform.machine(),
                    "bpf_permitted": permitted[0], "bpf_reason": permitted[1],
                    "cpus": os.cpu_count()},
        "targets": [_target_doc(t) for t in plan_.targets],
        "sim_sizes": list(plan_.options.sizes) if plan_.options.simulate else [],
        "programs": [],
        "skipped": list(plan_.skipped),
        "comparison": [],
    }


def finish_document(doc: dict[str, Any]) -> dict[str, Any]:
    doc["comparison"] = comparison_rows(doc)
    return doc
