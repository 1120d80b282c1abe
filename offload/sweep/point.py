"""One sweep point: its content key and its run (on a Dask worker).

A point's key is the SHA-256 of everything its result depends on: the object's and the state
file's bytes, the program, the changed target profile and the host profile (as documents),
the host cores, the traffic, the packet count, the seed and the code version (a hash of this
project's sources). Two runs of a spec with the same key give the same row, so a finished
point is reused, and a changed input (an object rebuilt, a profile value, our code) is
computed again.

``run_point`` maps the program on the changed profile (NIC targets: the mapper's verdict;
pipeline targets also its stages and passes, which the simulator's NIC cost takes) and
simulates it (``sim.scenario.run``), returning one flat row. It runs where Dask puts it:
objects and state files are read by path, so workers must see the same files (one machine,
or a shared file system).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import tomli_w

from offload.sweep.spec import Point

# The sources whose change changes a result: every package of the project.
_PACKAGES = ("ebpf", "hw", "sim", "offload")
_SOURCE_SUFFIXES = (".py", ".toml", ".j2")


@functools.cache
def code_version() -> str:
    """SHA-256 over this project's package sources (paths and bytes), hex."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in _SOURCE_SUFFIXES and path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _file_hash(path: str | None) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None


def point_key(point: Point, version: str | None = None) -> str:
    """The content hash that names ``point``'s result (see the module docstring)."""
    doc = {
        "object": _file_hash(point.program.object), "maps": _file_hash(point.program.maps),
        "program": point.program.program, "target": point.target,
        "profile": point.profile, "host_profile": point.host_profile,
        "host_cores": point.host_cores, "traffic": point.traffic, "packets": point.packets,
        "seed": point.seed, "host_cost": point.host_cost, "code": version or code_version(),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def versions() -> str:
    """What produced a row: our version and code hash, Python, the libraries that decide it."""
    libs = ", ".join(f"{name} {metadata.version(name)}" for name in
                     ("numpy", "simpy", "ortools", "dask"))
    return (f"xdp-offload {metadata.version('xdp-offload')} (code {code_version()[:12]}); "
            f"python {platform.python_version()}; {libs}")


def _resources(kind: str, profile: dict[str, Any], host_cores: int) -> float:
    """The hardware a point spends, in the unit its kind is sized by (the Pareto x axis):
    pipeline stages, NPU hardware threads, VLIW lanes, host cores (a modelling choice)."""
    if kind == "pipeline":
        return float(profile["stages"]["count"])
    if kind == "npu":
        return float(profile["cores"]["count"] * profile["cores"]["threads_per_core"])
    if kind == "vliw":
        return float(profile["vliw"]["lanes"])
    return float(host_cores)


def run_point(point: Point, key: str) -> dict[str, Any]:
    """Map and simulate ``point``; its row (``ROW_COLUMNS`` of ``offload.sweep.results``)."""
    from hw.targets import load_target_file
    from offload.mapper import map_program
    from offload.sim_cost import mapped_nic_cost
    from sim.scenario import Scenario, run

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="offload-sweep-") as tmp:
        profile_path = Path(tmp) / f"{point.profile['name']}.toml"
        profile_path.write_text(tomli_w.dumps(point.profile))
        host_dir = Path(tmp) / "host"
        host_dir.mkdir()
        host_path = host_dir / f"{point.host_profile['name']}.toml"
        host_path.write_text(tomli_w.dumps(point.host_profile))
        target = load_target_file(profile_path)
        host = target if target.location == "host" else load_target_file(host_path)
        verdict, stages, passes = "host", 0, 0
        if target.location == "nic" and target.kind != "pipeline":
            # a run-to-completion NIC: the mapper's verdict (a pipeline's comes with its cost)
            verdict = map_program(point.program.object, target, point.program.program,
                                  equivalence=False).verdict
        sc = Scenario(program=point.program.object, program_name=point.program.program,
                      maps=point.program.maps, target=str(profile_path),
                      host=str(host_path), traffic=point.traffic, packets=point.packets,
                      seed=point.seed, host_cores=point.host_cores, host_cost=point.host_cost)
        result = run(sc, progress_enabled=False,
                     nic_cost_for=mapped_nic_cost if target.kind == "pipeline" else None)
    if result.get("nic_cost") and target.kind == "pipeline":
        verdict = result["nic_cost"].get("verdict") or "unmapped"
        stages = int(result["nic_cost"].get("stages") or 0)
        passes = int(result["nic_cost"].get("passes") or 0)
    m = result["metrics"]
    cores = point.host_cores or host.cores.num_threads
    finished = m["finished"]
    return {
        "key": key, "object": point.program.object, "program": result["program"],
        "maps": point.program.maps or "", "target": point.target, "kind": point.kind,
        "params": json.dumps(dict(point.params), sort_keys=True), "traffic": point.traffic,
        "packets": m["packets"], "seed": point.seed,
        "clock_mhz": float(target.clock_mhz), "host_cores": int(cores),
        "resources": _resources(point.kind, point.profile, cores),
        "verdict": verdict, "stages": stages, "passes": passes,
        "punted_share": float(m["punted"]["fraction"]),
        "offered_mpps": float(m["offered"]["mpps"]),
        "achieved_mpps": float(m["achieved"]["mpps"]),
        "lost": int(m["lost"]["total"]),
        "p99_latency_ns": float(m["latency_ns"].get("p99", math.nan)),
        "host_cores_needed": int(m["host_cores_needed"]),
        "nic_share": (m["finished_on"]["nic"] / finished) if finished else 0.0,
        "duration_ns": float(m["duration_ns"]),
        "wall_s": time.perf_counter() - start, "versions": versions(), "error": "",
    }
