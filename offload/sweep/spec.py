"""The sweep specification (TOML) and the points it expands to.

    programs = [{object = "build/xdp/firewall.o", maps = "examples/xdp/scenarios/firewall.json"}]
    targets = ["pipe", "host"]
    traffic = ["64B@100G", "imix@100G"]
    packets = 20000          # optional: per point (default: the simulator's)
    seed = 1                 # optional (default 1)
    host = "host"            # optional: the host profile behind NIC targets
    host_cost = "auto"       # optional: the simulator's --host-cost (kernel, model, auto)
    [params.pipe]
    num_stages = [8, 12, 16, 24]
    clock_mhz = [250, 500]
    [params.host]
    cores = [1, 2, 4, 6]

Each program entry takes ``object`` (required), ``maps`` (a state file) and ``program`` (a
program of the object; default: the simulator's choice). Relative paths are relative to the
spec file. ``[params.T]`` gives, per target, a grid: every combination of the listed values
is one point (``points = [{...}, ...]`` in the same table gives a list of combinations
instead). A parameter is a friendly name of the target's kind (``PARAM_ALIASES``) or a dotted
key of the profile itself (``stages.latency_cycles``). ``cores`` of a host target is the
number of host cores that run the program (1 to the profile's count); ``profile`` of a host
target picks another host profile (e.g. ``host-hxdp``).

Everything is checked before any work starts: unknown keys, targets, parameters, values the
profile does not accept (the changed profile is validated by ``hw.targets.parse_target``),
missing objects or state files, bad traffic specs. Each problem is one ``SweepSpecError``
line naming the spec file and the key.
"""

from __future__ import annotations

import copy
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw.errors import HwError
from hw.targets import load_target, parse_target
from hw.tomlfile import read_toml
from offload.errors import SweepSpecError
from sim.errors import SimError
from sim.scenario import HOST_COSTS, MAX_PACKETS, MAX_SEED
from sim.spec import parse_traffic

# Friendly parameter names per target kind -> the profile key they set (dotted path; an
# integer index selects an element of an array of tables). Host "cores" and "profile" are
# not profile keys: they choose the cores the simulator uses and the profile itself.
PARAM_ALIASES: dict[str, dict[str, str]] = {
    "pipeline": {"num_stages": "stages.count", "clock_mhz": "clock_mhz",
                 "containers": "phv.containers.0.count", "table_memory": "stages.sram.blocks",
                 "passes": "recirculation.max_passes", "window_bytes": "packet.window_bytes"},
    "vliw": {"lanes": "vliw.lanes", "clock_mhz": "clock_mhz"},
    "npu": {"cores": "cores.count", "threads": "cores.threads_per_core",
            "clock_mhz": "clock_mhz"},
    "cpu": {"clock_mhz": "clock_mhz"},
}
HOST_PARAMS = ("cores", "profile")
SPEC_KEYS = ("programs", "targets", "traffic", "params", "packets", "seed", "host",
             "host_cost")
MAX_POINTS = 10_000  # modelling choice: a larger grid is almost surely a typo in the spec


@dataclass(frozen=True)
class ProgramEntry:
    object: str
    maps: str | None = None
    program: str | None = None


@dataclass(frozen=True)
class Point:
    """One run: a program on a target profile (changed by ``params``) under one traffic."""

    program: ProgramEntry
    target: str
    """The target's name as the spec gave it."""
    kind: str
    params: tuple[tuple[str, Any], ...]
    profile: dict[str, Any] = field(compare=False, hash=False, repr=False)
    """The target's profile document with the parameters applied (validated)."""
    host_profile: dict[str, Any] = field(compare=False, hash=False, repr=False)
    host_cores: int | None
    traffic: str
    packets: int | None
    seed: int
    host_cost: str = "auto"

    @property
    def label(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params)
        name = Path(self.program.object).stem + (f":{self.program.program}"
                                                 if self.program.program else "")
        return f"{name} on {self.target}" + (f" ({params})" if params else "") + \
            f", {self.traffic}"


@dataclass
class SweepSpec:
    source: str
    points: list[Point]
    programs: list[ProgramEntry]
    targets: list[str]
    traffic: list[str]


def _fail(source: str, key: str, problem: str) -> SweepSpecError:
    return SweepSpecError(f"{source}: {key}: {problem}")


def _path(value: Any, base: Path, source: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(source, key, f"expected a path, got {value!r}")
    path = Path(value) if os.path.isabs(value) else base / value
    if not path.is_file():
        raise _fail(source, key, f"no such file: {path}")
    return str(path.resolve())


def _programs(doc: dict[str, Any], base: Path, source: str) -> list[ProgramEntry]:
    entries = doc.get("programs")
    if not isinstance(entries, list) or not entries:
        raise _fail(source, "programs", "expected a non-empty list of {object = ...} tables")
    out = []
    for i, entry in enumerate(entries):
        key = f"programs[{i}]"
        if isinstance(entry, str):
            entry = {"object": entry}
        if not isinstance(entry, dict):
            raise _fail(source, key, f"expected a table or a path, got {entry!r}")
        unknown = sorted(set(entry) - {"object", "maps", "program"})
        if unknown:
            raise _fail(source, f"{key}.{unknown[0]}", "unknown key (expected object, maps, "
                                                      "program)")
        if "object" not in entry:
            raise _fail(source, key, "object: missing")
        program = entry.get("program")
        if program is not None and (not isinstance(program, str) or not program):
            raise _fail(source, f"{key}.program", f"expected a name, got {program!r}")
        out.append(ProgramEntry(
            object=_path(entry["object"], base, source, f"{key}.object"),
            maps=_path(entry["maps"], base, source, f"{key}.maps") if "maps" in entry
            else None, program=program))
    return out


def _strings(doc: dict[str, Any], key: str, source: str) -> list[str]:
    value = doc.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v for v in value):
        raise _fail(source, key, f"expected a non-empty list of strings, got {value!r}")
    if len(set(value)) != len(value):
        raise _fail(source, key, "lists a value twice")
    return value


def _int(doc: dict[str, Any], key: str, source: str, default: int | None,
         minimum: int, maximum: int) -> int | None:
    if key not in doc:
        return default
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int) or \
            not minimum <= value <= maximum:
        raise _fail(source, key, f"expected an integer in {minimum}..{maximum}, "
                                 f"got {value!r}")
    return value


def _set_key(profile: dict[str, Any], dotted: str, value: Any) -> bool:
    """Set ``dotted`` in ``profile`` in place; False when the key is not in the profile."""
    node: Any = profile
    parts = dotted.split(".")
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    last = parts[-1]
    if not isinstance(node, dict) or last not in node or isinstance(node[last], (dict, list)):
        return False
    node[last] = value
    return True


def _builtin_doc(name: str, extra: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    target = load_target(name, extra=extra)
    return read_toml(Path(target.source), SweepSpecError, what="target profile"), target


def _combinations(table: dict[str, Any], source: str, key: str) -> list[dict[str, Any]]:
    if "points" in table:
        if set(table) != {"points"}:
            raise _fail(source, key, "give either a grid of lists or 'points', not both")
        points = table["points"]
        if not isinstance(points, list) or not points or not all(
                isinstance(p, dict) and p for p in points):
            raise _fail(source, f"{key}.points", "expected a non-empty list of tables")
        return [dict(p) for p in points]
    grid = {}
    for name, values in table.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise _fail(source, f"{key}.{name}", "expected at least one value")
        grid[name] = values
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _apply(name: str, kind: str, location: str, doc: dict[str, Any], combo: dict[str, Any],
           source: str, key: str, extra: tuple[str, ...]
           ) -> tuple[dict[str, Any], int | None]:
    """The target's profile with ``combo`` applied, validated; and the host cores chosen."""
    profile = copy.deepcopy(doc)
    cores = None
    if location == "host" and "profile" in combo:
        other = combo["profile"]
        if not isinstance(other, str):
            raise _fail(source, f"{key}.profile", f"expected a host profile name, got {other!r}")
        try:
            profile, tgt = _builtin_doc(other, extra)
        except HwError as exc:
            raise _fail(source, f"{key}.profile", str(exc)) from exc
        if tgt.location != "host":
            raise _fail(source, f"{key}.profile", f"{other!r} is not a host profile")
    for pname, value in combo.items():
        if location == "host" and pname in HOST_PARAMS:
            if pname == "cores":
                count = profile["cores"]["count"]
                if isinstance(value, bool) or not isinstance(value, int) or not (
                        1 <= value <= count):
                    raise _fail(source, f"{key}.cores", f"expected 1 to {count} (the "
                                f"profile's cores), got {value!r}")
                cores = value
            continue
        dotted = PARAM_ALIASES.get(kind, {}).get(pname, pname)
        if not _set_key(profile, dotted, value):
            known = sorted(PARAM_ALIASES.get(kind, {})) + (
                list(HOST_PARAMS) if location == "host" else [])
            raise _fail(source, f"{key}.{pname}", f"unknown parameter for a {kind} target "
                        f"(known: {', '.join(known)}, or a dotted key of the profile)")
        if dotted == "cores.count" and "usable" in profile.get("cores", {}):
            profile["cores"]["usable"] = min(profile["cores"]["usable"], value)
    try:
        parse_target(copy.deepcopy(profile), f"{name} with {combo}", stem=profile.get("name"))
    except HwError as exc:
        raise _fail(source, key, f"value out of the profile's range: {exc}") from exc
    return profile, cores


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check ``path``; every point expanded (``SweepSpecError`` on any problem)."""
    file = Path(path)
    source = str(path)
    doc = read_toml(file, SweepSpecError, what="the sweep spec")
    unknown = sorted(set(doc) - set(SPEC_KEYS))
    if unknown:
        raise _fail(source, unknown[0], f"unknown key (expected {', '.join(SPEC_KEYS)})")
    base = file.resolve().parent
    programs = _programs(doc, base, source)
    targets = _strings(doc, "targets", source)
    traffic = _strings(doc, "traffic", source)
    packets = _int(doc, "packets", source, None, 1, MAX_PACKETS)
    seed = _int(doc, "seed", source, 1, 0, MAX_SEED)
    host = doc.get("host", "host")
    host_cost = doc.get("host_cost", "auto")
    if host_cost not in HOST_COSTS:
        raise _fail(source, "host_cost", f"expected one of {', '.join(HOST_COSTS)}, got "
                    f"{host_cost!r}")
    params = doc.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise _fail(source, "params", "expected tables [params.TARGET]")
    for name in params:
        if name not in targets:
            raise _fail(source, f"params.{name}", f"not one of the targets "
                        f"({', '.join(targets)})")
    try:
        host_doc, host_target = _builtin_doc(host, ())
    except HwError as exc:
        raise _fail(source, "host", str(exc)) from exc
    if host_target.location != "host":
        raise _fail(source, "host", f"{host!r} is not a host profile")
    docs = {}
    for name in targets:
        try:
            docs[name] = _builtin_doc(name, ())
        except HwError as exc:
            raise _fail(source, "targets", str(exc)) from exc
    points: list[Point] = []
    for name in targets:
        doc_t, target = docs[name]
        combos = _combinations(params.get(name, {}), source, f"params.{name}")
        for combo in combos:
            profile, cores = _apply(name, target.kind, target.location, doc_t, combo, source,
                                    f"params.{name}", ())
            for tr in traffic:
                try:
                    parse_traffic(tr, line_rate_gbps=float(profile["line_rate_gbps"]),
                                  where=f"target '{name}'")
                except SimError as exc:
                    raise _fail(source, "traffic", str(exc)) from exc
                for prog in programs:
                    points.append(Point(
                        program=prog, target=name, kind=target.kind,
                        params=tuple(sorted(combo.items())), profile=profile,
                        host_profile=profile if target.location == "host" else host_doc,
                        host_cores=cores, traffic=tr, packets=packets, seed=seed,
                        host_cost=host_cost))
                    if len(points) > MAX_POINTS:
                        raise _fail(source, "params", f"more than {MAX_POINTS} points")
    return SweepSpec(source=source, points=points, programs=programs, targets=targets,
                     traffic=traffic)
