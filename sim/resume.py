"""Convergence extensions that go on from where the last attempt stopped.

``sim.scenario.run_prepared`` runs an unconverged synthetic run again on longer traffic.
Synthetic traffic is prefix-stable: the longer attempt's first packets are the shorter
attempt's, with the same bytes, templates and arrival times (``sim.traffic.generate`` draws
packet after packet from one seeded stream). The behaviour of the longer attempt is the
program run on every packet in order, maps persisting, so its first packets do exactly
what they did in the last attempt; only the new packets need to run, on the executor (its
maps) and the pipeline model as the last attempt left them.

``Resumable`` keeps that run open across one ``run_prepared``'s attempts: ``behaviour``
continues the open run when the new traffic starts with everything the open run has seen
(checked packet by packet: bytes, template label, arrival time) and is for the same
executor kind and NIC cost; otherwise it starts afresh. Only the compiled executor's batched
behaviour (``sim.behaviour.BatchRun``, tail calls included) goes on; the packet-by-packet
loop (the VM, the kernel executor, ``sampled``, a stateless program, whose distinct
packets run once) runs the whole traffic each time, as before. The classes of a
resumed behaviour are worked out over the whole stream, so a resumed behaviour equals the
behaviour of the same traffic from scratch (tests/sim/test_resume.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import numpy as np


def is_prefix(old: Any, new: Any) -> bool:
    """Whether traffic ``new`` begins with every packet of ``old``: the same bytes and
    template label per packet, the same arrival times."""
    n = old.num_packets
    if new.num_packets < n or not np.array_equal(old.arrival_ns, new.arrival_ns[:n]):
        return False
    pairs = np.unique(np.stack([np.asarray(old.rep, dtype=np.int64),
                                np.asarray(new.rep[:n], dtype=np.int64)]), axis=1)
    return all(old.reps[a] == new.reps[b] and old.rep_labels[a] == new.rep_labels[b]
               for a, b in pairs.T.tolist())


def open_run(sc: Any, kind: str, cost: Any, stack: ExitStack) -> tuple[Any, Any, bool, bool]:
    """The executor of ``kind`` on the scenario's program and map state (closed with
    ``stack``), the pipeline model beside it for a mapped ``cost`` (or None), whether the
    program is stateless and whether only distinct packets run (``sim.scenario.
    run_behaviour``'s choices)."""
    import sim.scenario as scn
    from ebpf.differential import Scenario as MapScenario
    from ebpf.executor import open_executor
    from ebpf.loader.elf import load

    assert sc.program is not None
    obj = load(sc.program)
    state = MapScenario.load(sc.maps) if sc.maps else MapScenario()
    ex = stack.enter_context(open_executor(kind, sc.program, obj, sc.program_name, state,
                                           seed=sc.seed))
    pipe = None
    if cost is not None and cost.punt == "model":
        assert cost.config is not None
        pipe = scn.PipelinePunts(cost.config, ex.maps)
    stateless = not obj.maps and not any(p.helper_ids() for p in obj.programs)
    return ex, pipe, stateless, sc.behaviour == "sampled" or stateless


class Resumable:
    """One ``run_prepared``'s open behaviour run (see the module docstring); ``close``
    closes its executor."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._run: Any = None  # sim.behaviour.BatchRun
        self._traffic: Any = None
        self._what: tuple[Any, ...] = ()
        self.resumed = 0
        """Attempts that went on from the last one instead of starting afresh."""

    def behaviour(self, sc: Any, traffic: Any, kind: str, cost: Any = None,
                  step: Any = None, paths: bool = False) -> Any:
        """``sim.scenario.run_behaviour(sc, traffic, kind, cost, step, paths)``, going on
        from the open run where it can."""
        from sim.behaviour import batches, behaviour_batched, behaviour_one_by_one

        what = (sc, kind, cost)
        if self._run is not None and self._what[0] is sc and self._what[1:] == what[1:] \
                and is_prefix(self._traffic, traffic):
            self.resumed += 1
            run = self._run
            if step:
                step(f"{run.ex.name} executor on packets {run.n} .. "
                     f"{traffic.num_packets - 1} (going on from the last attempt)")
            try:
                beh = behaviour_batched(sc, traffic, run.ex, run.pipe, paths, False, run)
            except BaseException:
                self.close()  # the run stopped part-way: it cannot go on
                raise
            self._traffic = traffic
            return beh
        self.close()
        stack = ExitStack()
        try:
            ex, pipe, stateless, sampled = open_run(sc, kind, cost, stack)
            if step:
                step(f"{ex.name} executor on all {traffic.num_packets} packets")
            if sampled or not batches(ex):
                with stack:
                    return behaviour_one_by_one(sc, traffic, ex, pipe, paths, sampled,
                                                stateless)
            from sim.behaviour import BatchRun

            run = BatchRun(ex, ex.obj, pipe)
            beh = behaviour_batched(sc, traffic, ex, pipe, paths, stateless, run)
        except BaseException:
            stack.close()
            raise
        self._stack, self._run, self._traffic, self._what = stack, run, traffic, what
        return beh

    def close(self) -> None:
        """Close the open run's executor (idempotent)."""
        stack, self._stack, self._run, self._traffic = self._stack, None, None, None
        if stack is not None:
            stack.close()
