"""Run one XDP program on the VM and in the kernel on the same packets, and compare.

Compared per packet: the verdict (test_run's return value) and the output bytes (data_meta
to data_end); at the end: the contents of every map user space can read. Inputs that the
kernel does not let us choose are made deterministic first:

- time: a program that reads the clock (`bpf_ktime_get_ns` and friends) is rewritten on
  both sides to read a one-entry clock map instead (ebpf.code.rewrite.inject_clock), which the
  harness sets before each packet; the kernel side then loads our linked program through
  bpf(2) (ebpf.kernel.raw), since libbpf would reject rewritten instructions;
- the FIB: with routes in the scenario, the kernel side runs inside a network namespace
  built from the same routes (ebpf.kernel.netns);
- the CPU: the process is pinned to CPU 0 while the kernel runs, so per-CPU maps change
  in the slot the VM (cpu 0) changes.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebpf.errors import EbpfError, ElfError
from ebpf.helpers.core import HelperEnv, Route
from ebpf.jsonfile import read_json
from ebpf.kernel_enums import HELPER_IDS
from ebpf.loader.program import ElfObject, ProgramDef
from ebpf.maps.state import MapStateError, dump_state, load_state
from ebpf.vm.machine import Vm
from ebpf.vm.xdp import VERDICT_NAMES, XdpResult

CLOCK_HELPERS = frozenset(HELPER_IDS[n] for n in ("ktime_get_ns", "ktime_get_boot_ns",
                                                   "ktime_get_coarse_ns"))
CLOCK_MAP = "offload_clock"
# Map types whose contents bpf(2) cannot read back: never compared.
UNREADABLE_MAPS = frozenset({"perf_event_array", "ringbuf", "user_ringbuf", "xskmap",
                             "sockmap", "sockhash", "queue", "stack", "struct_ops"})


@dataclass
class Scenario:
    """Everything a run needs besides program and packets: map state, routes, clock.

    The file is a map-state document (`{"maps": {...}}`) with two optional keys:
    `"routes"`: a list of `{"prefix", "ifindex", "smac", "dmac", "gateway", "mtu", "kind"}`
    (MACs as "02:00:00:00:00:01"; `dmac` null = no neighbour) for bpf_fib_lookup, and
    `"clock"`: `{"start_ns", "step_ns"}`, the clock value for packet i being
    start_ns + i * step_ns. `"max_entries"`: `{"<map>": N}` sizes the maps whose loader
    sets max_entries at run time (0 in the ELF), as `bpf_map__set_max_entries` would.
    """

    state: dict[str, Any] | None = None
    routes: list[Route] = field(default_factory=list)
    clock_start_ns: int = 1_000_000_000
    clock_step_ns: int = 1_000_000
    source: str = "<scenario>"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scenario:
        return cls.from_dict(read_json(path, MapStateError), os.fspath(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<scenario>") -> Scenario:
        if not isinstance(doc, dict) or not isinstance(doc.get("maps", {}), dict):
            raise MapStateError(f"{source}: expected an object with a \"maps\" object")
        raw_routes = doc.get("routes", [])
        if not isinstance(raw_routes, list):
            raise MapStateError(f"{source}: \"routes\" must be a list, got "
                                f"{type(raw_routes).__name__}")
        routes = [_route(source, i, r) for i, r in enumerate(raw_routes)]
        clock = doc.get("clock", {})
        if not isinstance(clock, dict):
            raise MapStateError(f"{source}: \"clock\" must be an object, got "
                                f"{type(clock).__name__}")
        # the clock map holds a u64 (ebpf.code.rewrite.inject_clock): never truncated
        start = _uint(f"{source}: clock.start_ns", clock.get("start_ns", 1_000_000_000), 64)
        step = _uint(f"{source}: clock.step_ns", clock.get("step_ns", 1_000_000), 64)
        sizes = doc.get("max_entries", {})
        if not isinstance(sizes, dict) or not all(
                isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 32
                for n in sizes.values()):
            raise MapStateError(f"{source}: \"max_entries\" must map map names to sizes "
                                f"1..2^32-1, got {sizes!r}")
        state = {"maps": doc.get("maps", {}), "max_entries": dict(sizes)}
        return cls(state, routes, start, step, source)

    def get_max_entries(self) -> dict[str, int]:
        """The map sizes the scenario gives (``"max_entries"``), by map name."""
        return dict((self.state or {}).get("max_entries", {}))

    def clock_ns(self, index: int) -> int:
        return (self.clock_start_ns + index * self.clock_step_ns) & ((1 << 64) - 1)


def _route(source: str, index: int, raw: Any) -> Route:
    where = f"{source}: routes[{index}]"
    if not isinstance(raw, dict) or "prefix" not in raw or "ifindex" not in raw:
        raise MapStateError(f"{where}: needs at least \"prefix\" and \"ifindex\"")

    def mac(value: Any, key: str) -> bytes | None:
        if value is None:
            return None
        try:
            out = bytes.fromhex(str(value).replace(":", ""))
        except ValueError:
            out = b""
        if len(out) != 6:
            raise MapStateError(f"{where}.{key}: expected a MAC address, got {value!r}")
        return out

    for key in ("prefix", "gateway", "src", "kind"):
        if (key == "prefix" or raw.get(key) is not None) and not isinstance(raw[key], str):
            raise MapStateError(f"{where}.{key}: expected a string, got {raw[key]!r}")
    # ifindex is an int in the kernel (struct net_device), the metric a u32 (rtnetlink's
    # RTA_PRIORITY); an IPv4 MTU lies in 68..65535 (include/net/ip.h IPV4_MIN_MTU, IP_MAX_MTU)
    ifindex = _uint(f"{where}.ifindex", raw["ifindex"], 31)
    mtu = _uint(f"{where}.mtu", raw.get("mtu", 1500), 16)
    if mtu < 68:
        raise MapStateError(f"{where}.mtu: expected 68..65535, got {mtu}")
    metric = _uint(f"{where}.metric", raw.get("metric", 0), 32)
    return Route(raw["prefix"], ifindex,
                 mac(raw.get("smac", "00:00:00:00:00:00"), "smac") or bytes(6),
                 mac(raw.get("dmac"), "dmac"), raw.get("gateway"), mtu, metric,
                 raw.get("src"), raw.get("kind", "unicast"))


def _uint(where: str, value: Any, bits: int) -> int:
    """A JSON integer in 0 .. 2**bits - 1 (not a bool, a float or a string), or
    MapStateError: a value bound for the kernel is checked, never truncated."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise MapStateError(f"{where}: expected an integer in 0..{(1 << bits) - 1}, "
                            f"got {value!r}")
    return value


def uses_clock(prog: ProgramDef, obj: ElfObject) -> bool:
    """True when the program (or a tail-call target in the object) reads the clock."""
    return any(h in CLOCK_HELPERS for p in obj.programs for h in p.helper_ids())


def num_cpus() -> int:
    """The possible CPUs, as libbpf_num_possible_cpus counts them: per-CPU map values."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
        return sum(int(b) - int(a) + 1 if "-" in part else 1
                   for part in text.split(",") for a, _, b in [part.partition("-")])
    except (OSError, ValueError):
        return os.cpu_count() or 1


# --- the two sides ------------------------------------------------------------------------

def loader_sized(m: Any) -> bool:
    """A map whose ELF max_entries is 0 for its loader to set (not one libbpf sizes)."""
    return m.max_entries == 0 and not m.is_global_data and not _libbpf_sized(m)


def _libbpf_sized(m: Any) -> bool:
    """A perf_event_array declared without max_entries: libbpf sizes it to the possible
    CPUs itself (libbpf.c, map_set_def_max_entries), and so does ``size_maps``."""
    return m.max_entries == 0 and m.type_name == "perf_event_array"


def size_maps(obj: ElfObject, scenario: Scenario) -> ElfObject:
    """``obj`` with the scenario's ``max_entries`` applied; ElfError naming the object and
    the map when a map is still 0-sized (its loader sizes it: the state file must), or
    MapStateError for a size given to a map the object does not have."""
    sizes = scenario.get_max_entries()
    names = {m.name for m in obj.maps}
    for name in sizes:
        if name not in names:
            raise MapStateError(f"{scenario.source}: max_entries: no map named '{name}' in "
                                f"{obj.path} (have: {', '.join(sorted(names)) or 'none'})")
    maps = [dataclasses.replace(m, max_entries=sizes[m.name]) if m.name in sizes else
            dataclasses.replace(m, max_entries=num_cpus()) if _libbpf_sized(m) else m
            for m in obj.maps]
    for m in maps:
        if loader_sized(m):
            raise ElfError(f"{obj.path}: map '{m.name}' has max_entries 0 (its loader sets it "
                           f"at run time): give it in the state file, e.g. "
                           f"\"max_entries\": {{\"{m.name}\": 1024}} (docs/state.md)")
    return dataclasses.replace(obj, maps=maps) if maps != obj.maps else obj


def prepare(obj: ElfObject, scenario: Scenario) -> tuple[ElfObject, bool]:
    """The object both sides run: maps sized by the scenario (``size_maps``), clock reads
    redirected to the clock map when needed."""
    obj = size_maps(obj, scenario)
    if any(uses_clock(p, obj) for p in obj.programs):
        from ebpf.code.rewrite import inject_clock

        return inject_clock(obj), True
    return obj, False


class VmSide:
    """The program on the reference VM, maps persisting across packets."""

    def __init__(self, obj: ElfObject, program: str | None, scenario: Scenario, *,
                 cpus: int | None = None, seed: int = 0, vm_class: type[Vm] = Vm):
        env = HelperEnv(cpu=0, num_cpus=cpus or num_cpus(), seed=seed,
                        routes=list(scenario.routes), clock_start_ns=scenario.clock_start_ns)
        self.vm = vm_class(obj, obj.get_xdp_program(program), env=env)
        self.maps = {m.name: m for m in self.vm.maps}
        if scenario.state is not None:
            load_state(self.maps, scenario.state, programs=None)
        self.scenario = scenario

    def set_clock(self, ns: int) -> None:
        self.maps[CLOCK_MAP].update(bytes(4), ns.to_bytes(8, "little"))

    def run(self, packet: bytes) -> XdpResult:
        return self.vm.run_xdp(packet)

    def dump(self) -> dict[str, Any]:
        return dump_state(self.maps)


@contextmanager
def kernel_side(path: str, obj: ElfObject, scenario: Scenario, raw: bool) -> Iterator[Any]:
    """The program loaded in the kernel, the process pinned to CPU 0, in the FIB netns."""
    from ebpf.kernel.bridge import KernelObject

    with ExitStack() as stack:
        if scenario.routes:
            from ebpf.kernel.netns import fib_namespace, inside

            name = stack.enter_context(fib_namespace(scenario.routes))
            stack.enter_context(inside(name))
        if raw or scenario.get_max_entries():  # libbpf would load the ELF's sizes
            from ebpf.kernel.raw import RawKernelObject

            kobj = stack.enter_context(RawKernelObject(obj, state=scenario.state))
        else:
            kobj = stack.enter_context(KernelObject(path, state=scenario.state))
        stack.enter_context(pinned_cpu(0))
        yield kobj


@contextmanager
def pinned_cpu(cpu: int) -> Iterator[None]:
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


# --- comparison ---------------------------------------------------------------------------

@dataclass
class Mismatch:
    index: int  # packet index, or -1 for the final map state
    what: str  # "verdict" | "data" | "map <name>"
    vm: str
    kernel: str


@dataclass
class DiffReport:
    program: str
    packets: int
    mismatches: list[Mismatch]
    vm_verdicts: Counter
    kernel_verdicts: Counter
    clock_injected: bool
    fib_namespace: bool
    first_packet: bytes | None = None  # the first packet that differed
    executor: str = "vm"
    """What ran the VM's side: vm or compiled (the "vm" verdicts below are its)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "executor": self.executor,
            "packets": self.packets,
            "mismatches": len(self.mismatches),
            "verdicts": {"vm": _named(self.vm_verdicts), "kernel": _named(self.kernel_verdicts)},
            "clock_injected": self.clock_injected,
            "fib_namespace": self.fib_namespace,
            "first_mismatches": [m.__dict__ for m in self.mismatches[:20]],
            "first_packet": self.first_packet.hex() if self.first_packet else None,
        }


def _named(counter: Counter) -> dict[str, int]:
    return {VERDICT_NAMES.get(k, str(k)): v for k, v in sorted(counter.items())}


def compare_states(vm_state: dict, kernel_state: dict) -> list[Mismatch]:
    out = []
    for name, theirs in sorted(kernel_state.get("maps", {}).items()):
        mine = vm_state.get("maps", {}).get(name)
        if mine is None:
            out.append(Mismatch(-1, f"map {name}", "missing", f"{len(theirs)} entries"))
            continue
        if _comparable(mine) != _comparable(theirs):
            a, b = _first_difference(_comparable(mine), _comparable(theirs))
            out.append(Mismatch(-1, f"map {name}", a, b))
    return out


def _comparable(entries: list[dict]) -> dict[str, Any]:
    return {e["key"]: {k: v for k, v in e.items() if k != "key"} for e in entries}


def _first_difference(a: dict, b: dict) -> tuple[str, str]:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{key}: {a.get(key)}", f"{key}: {b.get(key)}"
    return "", ""


def differential(path: str, obj: ElfObject, packets: Sequence[bytes], scenario: Scenario,
                 program: str | None = None, *, progress: Any = None,
                 executor: str = "vm") -> DiffReport:
    """Run ``packets`` through both sides (the VM's semantics, on ``executor``: ``vm``,
    ``compiled``, or ``auto`` = compiled where the program compiles, else vm; and the
    kernel backend) and compare everything observable."""
    from ebpf.executor import KernelExecutor, reference_executor

    run_obj, clock = prepare(obj, scenario)
    prog = run_obj.get_xdp_program(program)
    report = DiffReport(prog.name, len(packets), [], Counter(), Counter(), clock,
                        bool(scenario.routes))
    with KernelExecutor(path, run_obj, prog.name, scenario, clock=clock) as kernel:
        # per-CPU layouts must match the kernel's
        vm = reference_executor(executor, path, run_obj, prog.name, scenario, clock=clock,
                                cpus=kernel.num_cpus)
        report.executor = vm.name
        times = [scenario.clock_ns(i) - scenario.clock_start_ns for i in range(len(packets))]
        mine_all = _results_or_errors(vm, list(packets), times)
        for i, packet in enumerate(packets):
            t = times[i]
            vm_verdict, vm_data = mine_all[i]
            theirs = kernel.run(packet, t)
            report.vm_verdicts[vm_verdict] += 1
            report.kernel_verdicts[theirs.verdict] += 1
            kernel_data = theirs.packet_out
            if vm_verdict != theirs.verdict:
                report.mismatches.append(Mismatch(i, "verdict", _vname(vm_verdict, vm_data),
                                                  _vname(theirs.verdict, b"")))
            elif vm_data != kernel_data:
                report.mismatches.append(Mismatch(i, "data", vm_data.hex(), kernel_data.hex()))
            if report.mismatches and report.first_packet is None:
                report.first_packet = packet
            if progress is not None:
                progress()
        kernel_state = kernel.dump_maps()
    vm_state = vm.dump_maps()
    skip = {m.name for m in run_obj.maps if m.type_name in UNREADABLE_MAPS}
    kernel_state = {"maps": {k: v for k, v in kernel_state["maps"].items() if k not in skip}}
    report.mismatches += compare_states(vm_state, kernel_state)
    return report


def _results_or_errors(ex: Any, packets: list[bytes], times: list[int]
                       ) -> list[tuple[int, bytes]]:
    """(verdict, output) per packet as one stream (the compiled backend batches it); a
    packet the VM's semantics refuse gives (-1, the error text) and the stream goes on."""
    out: list[tuple[int, bytes]] = []
    while len(out) < len(packets):
        start = len(out)
        try:
            for r in ex.iter_results(packets[start:], times[start:]):
                out.append((r.verdict, r.packet_out))
        except EbpfError as exc:  # iter_results names the packet; the cause is the VM's
            out.append((-1, str(exc.__cause__ or exc).encode()))
    return out


def _vname(verdict: int, detail: bytes) -> str:
    if verdict == -1:
        return f"VM error: {detail.decode(errors='replace')}"
    return VERDICT_NAMES.get(verdict, str(verdict))
