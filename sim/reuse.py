"""Reusing one program's behaviour on one traffic across the runs that share a ``RunCache``.

The behaviour of a run (``sim.scenario.run_behaviour``: every packet through the program on
an executor) depends on the program, its map state, the executor and its seed, the packets
in arrival order and, when the program reads the clock, their arrival times; not on the
target, except in two ways:

- on a pipeline with a mapping (punt "model") the pipeline model runs beside the executor
  and shares its maps: such runs are never reused;
- the run-to-completion NICs (npu, vliw) split classes by the path a packet took
  (``paths``), the others do not. A reused behaviour is computed with paths and merged
  (``without_paths``) for a run that does not split by path: the same classes, labels,
  counts and order as a run without paths (classes are numbered by first appearance, so a
  merged class keeps the first of its path classes as its representative).

The executor enters the key as the one the run opens (``reuse_kind``): a host run's
``auto`` opens the compiled executor for a program that compiles, as the NIC runs' choice
does, so the host targets share the NIC runs' behaviour too.

So the report's runs of one program at one traffic on the npu, the vliw core, the DPU and
the hosts run the program once (once per line rate for a clock-reading program), not five
times. ``behaviour_key`` says what a behaviour depends on; the traffic's packets and order
(and arrival times when the clock is read) enter as a digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np


def traffic_digest(traffic: Any, clock: bool) -> str:
    """A digest of what the program sees of ``traffic``: the distinct packets' bytes and
    labels, which one each packet is, and (``clock``) every arrival time."""
    h = hashlib.blake2b(digest_size=20)
    for packet, label in zip(traffic.reps, traffic.rep_labels, strict=True):
        h.update(len(packet).to_bytes(4, "little"))
        h.update(packet)
        h.update(label.encode("utf-8", "surrogateescape") + b"\0")
    h.update(np.ascontiguousarray(traffic.rep, dtype=np.int64).tobytes())
    if clock:
        h.update(b"clock")
        h.update(np.ascontiguousarray(traffic.arrival_ns, dtype=np.int64).tobytes())
    return h.hexdigest()


def behaviour_key(sc: Any, traffic: Any, kind: str, program_key: tuple[Any, ...],
                  state_key: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """What a run's behaviour depends on (see the module docstring); ``program_key`` and
    ``state_key`` identify the object and map-state files (``sim.mapping.object_key``)."""
    from ebpf.differential import uses_clock
    from ebpf.loader.elf import load

    obj = load(sc.program)
    clock = any(uses_clock(p, obj) for p in obj.programs)
    return (program_key, sc.program_name, state_key, reuse_kind(kind, obj), sc.seed,
            sc.behaviour, traffic.num_packets, traffic_digest(traffic, clock))


def reuse_kind(kind: str, obj: Any) -> str:
    """The executor a run of ``kind`` opens, where that is known before opening it:
    ``ebpf.executor.open_executor`` opens ``auto`` as the compiled executor exactly when
    the compiled code takes the programs (``unsupported_reason`` is None; otherwise it
    tries the kernel, then the VM, so ``auto`` stays itself)."""
    from ebpf.compiled import unsupported_reason

    if kind == "auto" and unsupported_reason(list(obj.programs)) is None:
        return "compiled"
    return kind


def without_paths(beh: Any) -> Any:
    """``beh`` (classes split by path) with the classes that differ only in their path
    merged: what ``run_behaviour`` gives without ``paths``. A behaviour without traces
    (the kernel executor: classes by verdict and length) is returned as it is."""
    if any(t is None for t in beh.traces):
        return beh
    merged: dict[Any, int] = {}
    remap = np.empty(len(beh.verdicts), dtype=np.int32)
    firsts: list[int] = []
    counts: list[int] = []
    for k, key in enumerate(zip(beh.verdicts, beh.costs, strict=True)):
        j = merged.get(key)
        if j is None:
            j = merged[key] = len(firsts)
            firsts.append(k)
            counts.append(0)
        counts[j] += beh.counts[k]
        remap[k] = j
    if len(firsts) == len(beh.verdicts):
        return beh
    return replace(beh, klass=remap[beh.klass] if len(beh.klass) else beh.klass.copy(),
                   verdicts=[beh.verdicts[k] for k in firsts],
                   costs=[beh.costs[k] for k in firsts],
                   packets=[beh.packets[k] for k in firsts],
                   labels=[beh.labels[k] for k in firsts], counts=counts,
                   traces=[beh.traces[k] for k in firsts])
