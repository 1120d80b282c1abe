"""Is a mapped program the same program? The pipeline (+ the host part) against the VM.

``check_equivalence`` runs a packet trace three ways and compares, packet by packet:

- the **reference**: the program on the VM (``ebpf.vm``, the kernel's semantics), maps
  loaded from the scenario;
- the **pipeline**: the configuration on the Python model (``hw.pipeline.PipelineModel``),
  its tables and registers loaded from the reference's initial map contents (scenario plus
  the object's global data), as the control plane would load them;
- the **host part**: every packet the pipeline punts (a mapper cut, a window fault, a frame
  too long) is run from the start by a second VM on the packet as it arrived. The punt frame
  must carry the packet unchanged and the pipeline must not have written a register for it:
  a punted packet had no side effect on the NIC.

The verdict, the output bytes (data .. data_end) and, for XDP_REDIRECT, the target
interface must match the reference's; at the end the map contents must too. Maps that the
program writes and the pipeline holds are one logical state shared through the control
plane: before the host runs a punted packet it reads them from the pipeline, afterwards it
writes them back (per-CPU maps: the pipeline is CPU 0; the other CPUs' values stay the
host's). The host VM also gets the reference's clock and random state of that packet, so a
helper that reads them answers the same.

The first difference fails the check with one line: ``packet 17: verdict 2 (expected 1)``,
``packet 3: output bytes differ at byte 12``, ``map 'stats': key 00000000: ...``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebpf.differential import Scenario, size_maps
from ebpf.errors import EbpfError
from ebpf.helpers.core import HelperEnv
from ebpf.loader.elf import ElfObject
from ebpf.maps.state import dump_state, load_state
from ebpf.vm.machine import Vm
from hw.pipeline import PipelineModel, load_config, parse_punt
from hw.pipeline.config import PERCPU_TYPES, PipelineConfig

DEFAULT_PACKETS = 2000
DEFAULT_SEED = 1
# Where a program's default scenario is looked for, relative to the current directory (the
# corpus's layout; make runs from the top of the project), after the object's own folder.
SCENARIOS = Path("examples") / "xdp" / "scenarios"


@dataclass
class EquivalenceResult:
    """What the comparison found; ``ok`` only when every packet and the final state agree."""

    ok: bool
    packets: int = 0  # compared
    punted: int = 0
    refused: int = 0  # shorter than the parser accepts (never reach the pipeline or the VM)
    punt_reasons: dict[int, int] = field(default_factory=dict)
    verdicts: dict[int, int] = field(default_factory=dict)
    failure: str = ""

    @property
    def punted_fraction(self) -> float:
        return self.punted / self.packets if self.packets else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "packets": self.packets, "punted": self.punted,
                "punted_fraction": round(self.punted_fraction, 6), "refused": self.refused,
                "punt_reasons": {str(k): v for k, v in sorted(self.punt_reasons.items())},
                "verdicts": {str(k): v for k, v in sorted(self.verdicts.items())},
                "failure": self.failure}


def scenario_path(obj_path: str | os.PathLike[str]) -> Path | None:
    """The default scenario of an object, ``<stem>.json``: in ``scenarios/`` beside the
    object, else in ``examples/xdp/scenarios/`` under the current directory; None when
    neither exists."""
    obj = Path(obj_path)
    for folder in (obj.parent / "scenarios", SCENARIOS):
        if (p := folder / f"{obj.stem}.json").exists():
            return p
    return None


def load_scenario(path: str | os.PathLike[str] | None) -> Scenario:
    return Scenario.load(path) if path is not None else Scenario()


def scenario_cpus(scenario: Scenario) -> int:
    """CPUs the scenario's per-CPU values assume (1 when it has none)."""
    n = 1
    for entries in (scenario.state or {}).get("maps", {}).values():
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict) and isinstance(e.get("values"), list):
                n = max(n, len(e["values"]))
    return n


def _vm(obj: ElfObject, program: str, scenario: Scenario, cpus: int) -> tuple[Vm, dict]:
    env = HelperEnv(cpu=0, num_cpus=cpus, routes=list(scenario.routes),
                    clock_start_ns=scenario.clock_start_ns)
    obj = size_maps(obj, scenario)
    vm = Vm(obj, obj.get_program(program), env=env)
    maps = {m.name: m for m in vm.maps}
    if scenario.state is not None:
        load_state(maps, scenario.state)
    return vm, maps


def initial_pipeline_state(obj: ElfObject, program: str, config: PipelineConfig | dict,
                           scenario: Scenario) -> PipelineModel:
    """A pipeline model of ``config`` whose tables and registers hold the maps' initial
    contents (the scenario's state plus the object's global data), as the control plane
    loads them before traffic: what ``check_equivalence`` starts from."""
    config = load_config(config)
    _, maps = _vm(obj, program, scenario, scenario_cpus(scenario))
    model = PipelineModel(config)
    bound = {m.name for m in config.maps}
    if bound:
        model.state.load_maps(dump_state({n: maps[n] for n in bound}))
    return model


def _percpu_merge(pipe_rows: list[dict], host_rows: list[dict], indexed: bool) -> list[dict]:
    """Per-CPU rows: CPU 0 from the pipeline, the other CPUs from the host (over the keys
    of both: sparse array dumps leave out all-zero rows), all-zero rows left out."""
    host = {r["key"]: r["values"] for r in host_rows}
    pipe = {r["key"]: r["values"] for r in pipe_rows}
    out = []
    def order(key: str) -> Any:  # ebpf.maps.state's: index order or key bytes
        raw = bytes.fromhex(key)
        return int.from_bytes(raw, "little") if indexed else raw

    for key in sorted(set(host) | set(pipe), key=order):
        values = list(host.get(key) or pipe[key])
        zero = "0" * len(values[0])
        values[0] = pipe[key][0] if key in pipe else zero
        if any(v != zero for v in values):
            out.append({"key": key, "values": values})
    return out


def _combined(config: PipelineConfig, model: PipelineModel, host_maps: dict,
              names: set[str]) -> dict[str, list]:
    """The contents of the maps in ``names`` whose values the pipeline holds in registers
    (the others it only reads: the control plane's copy, the host's, is the truth)."""
    pipe = model.state.dump_maps()["maps"]
    host = dump_state({n: host_maps[n] for n in names})["maps"]
    out = {}
    for name in names:
        b = config.get_map(name)
        if b is None or not b.registers:
            out[name] = host[name]
        elif b.type in PERCPU_TYPES:
            out[name] = _percpu_merge(pipe[name], host[name], b.type == "percpu_array")
        else:
            out[name] = pipe[name]
    return out


def check_equivalence(obj: ElfObject, program: str, config: PipelineConfig | dict,
                      scenario: Scenario, packets: list[bytes],
                      written_maps: set[str] | None = None) -> EquivalenceResult:
    """Compare VM and pipeline (+ host) on ``packets``; see the module docstring."""
    config = load_config(config)
    cpus = scenario_cpus(scenario)
    ref, ref_maps = _vm(obj, program, scenario, cpus)
    host, host_maps = _vm(obj, program, scenario, cpus)
    model = PipelineModel(config)
    bound = {m.name for m in config.maps}
    initial = dump_state({n: ref_maps[n] for n in bound})
    if bound:
        model.state.load_maps(initial)
    shared = bound & (written_maps if written_maps is not None else bound)
    out = EquivalenceResult(ok=False)
    t = config.target
    punts: Counter[int] = Counter()
    verdicts: Counter[int] = Counter()

    def fail(msg: str) -> EquivalenceResult:
        out.failure = msg
        out.punt_reasons, out.verdicts = dict(punts), dict(verdicts)
        return out

    for i, pkt in enumerate(packets):
        if len(pkt) < t.min_packet_bytes:
            out.refused += 1
            continue
        reads, rng = ref.helper_state.reads, ref.helper_state.rng.getstate()
        try:
            want = ref.run_xdp(pkt)
        except EbpfError as exc:
            return fail(f"packet {i}: the reference VM failed: {exc}")
        r = model.process(pkt)
        out.packets += 1
        if r.punted:
            reason, _fault, _, _, _, frame = parse_punt(r.punt.frame)
            punts[reason] += 1
            out.punted += 1
            if frame != pkt:
                return fail(f"packet {i}: punted (reason {reason}) with a modified packet")
            if r.register_writes:
                return fail(f"packet {i}: punted (reason {reason}) after writing map "
                            f"registers")
            if shared:
                _to_host(config, model, host_maps, shared)
            host.helper_state.reads = reads
            host.helper_state.rng.setstate(rng)
            try:
                got = host.run_xdp(pkt)
            except EbpfError as exc:
                return fail(f"packet {i}: the host part failed: {exc}")
            if shared:
                model.state.load_maps(dump_state({n: host_maps[n] for n in shared}))
            verdict, data = got.verdict, bytes(got.packet_out)
            redirect = got.redirect.ifindex if got.redirect is not None else None
        else:
            verdict, data, redirect = r.verdict, r.packet_out, r.redirect
        verdicts[verdict] += 1
        if verdict != want.verdict:
            return fail(f"packet {i}: verdict {verdict} (expected {want.verdict})"
                        + (" on the host" if r.punted else ""))
        if data != bytes(want.packet_out):
            pairs = zip(data, want.packet_out, strict=False)
            at = next((j for j, (x, y) in enumerate(pairs) if x != y),
                      min(len(data), len(want.packet_out)))
            return fail(f"packet {i}: output bytes differ at byte {at} (length {len(data)}, "
                        f"expected {len(want.packet_out)})")
        if want.verdict == 4:
            target = want.redirect.ifindex if want.redirect is not None else None
            if redirect != target:
                return fail(f"packet {i}: redirect to {redirect} (expected {target})")
    want_state = dump_state(ref_maps)["maps"]
    got_state = dump_state(host_maps)["maps"]
    got_state.update(_combined(config, model, host_maps, bound))
    for name in sorted(want_state):
        if got_state.get(name) != want_state[name]:
            return fail(_state_difference(name, got_state.get(name, []), want_state[name]))
    out.ok = True
    out.punt_reasons, out.verdicts = dict(punts), dict(verdicts)
    return out


def _to_host(config: PipelineConfig, model: PipelineModel, host_maps: dict,
             names: set[str]) -> None:
    doc = {"maps": _combined(config, model, host_maps, names)}
    load_state({n: host_maps[n] for n in names}, doc)


def _state_difference(name: str, got: list, want: list) -> str:
    g = {r["key"]: r for r in got}
    w = {r["key"]: r for r in want}
    for key in sorted(set(g) | set(w)):
        if g.get(key) != w.get(key):
            show = {k: v for k, v in (g.get(key) or {}).items() if k != "key"}
            exp = {k: v for k, v in (w.get(key) or {}).items() if k != "key"}
            return (f"map '{name}': key {key}: {json.dumps(show) if show else 'missing'} "
                    f"(expected {json.dumps(exp) if exp else 'missing'})")
    return f"map '{name}' differs"
