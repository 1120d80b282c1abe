"""The reference engine: the model of ``sim.model`` as a simpy simulation, a process per packet.

Components are plain classes with a ``run()`` process: a ``Source`` starts one ``packet``
process per packet at its arrival time; each ``Station`` is a ``simpy.Resource`` (its
servers) plus an admission process. ``SimpyEngine`` owns the ``Environment``. Time is in
ps (integers), as in the model.

The model's tie rules, in simpy terms:

- a departure at time t happens before an arrival at t: a packet's service ends with a
  NORMAL-priority timeout, and the release grants the next waiting request (NORMAL) at t;
  arrivals are admitted by ``Station.run`` in a ``LateTimeout``, an event of priority
  ``LATE`` that fires after every URGENT and NORMAL event of its instant;
- arrivals at the same instant are admitted in packet-index order: the station collects
  them and admits them together, sorted, in that late phase. Nothing admitted in the late
  phase can arrive anywhere else at the same instant (every service lasts >= 1 ps), so
  each instant's arrivals are all collected before it;
- admission counts the packets holding or waiting for a server (``users`` + ``queue`` of
  the resource), against the station's capacity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import simpy
from simpy.events import NORMAL, EventPriority, Timeout

from sim.model import HOST, LINK, NIC, PCIE, SimResult, Workload

LATE = EventPriority(NORMAL + 1)
PROGRESS_EVERY = 1024


class LateTimeout(Timeout):
    """A timeout processed after every URGENT and NORMAL event of the instant it fires at
    (in a ``LateEnvironment``, which schedules it at priority LATE)."""


class LateEnvironment(simpy.Environment):
    """An Environment whose ``schedule`` hook (public simpy API, called by every event it
    queues) gives ``LateTimeout``s priority LATE."""

    def schedule(self, event: simpy.Event, priority: EventPriority = NORMAL,
                 delay: Any = 0) -> None:
        super().schedule(event, LATE if isinstance(event, LateTimeout) else priority, delay)


class Station:
    """A FIFO queue: ``servers`` servers (a simpy Resource), room for ``capacity`` packets
    waiting or in service (None: unbounded); ``run()`` admits each instant's arrivals."""

    def __init__(self, env: simpy.Environment, kind: int, servers: int,
                 capacity: int | None):
        self.env = env
        self.kind = kind
        self.capacity = capacity
        self.servers = simpy.Resource(env, capacity=servers)
        self._arrived: list[tuple[int, simpy.Event]] = []
        self._wakeup = env.event()

    def arrive(self, index: int) -> simpy.Event:
        """Packet ``index`` is here; the event's value is its granted-or-queued Request, or
        None when the station is full (tail drop)."""
        ev = self.env.event()
        self._arrived.append((index, ev))
        if not self._wakeup.triggered:
            self._wakeup.succeed()
        return ev

    def run(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self._wakeup
            yield LateTimeout(self.env, 0)
            self._wakeup = self.env.event()
            arrived, self._arrived = sorted(self._arrived, key=lambda a: a[0]), []
            res = self.servers
            for _, ev in arrived:
                if self.capacity is not None and len(res.users) + len(res.queue) >= self.capacity:
                    ev.succeed(None)
                else:
                    ev.succeed(res.request())


class Source:
    """Starts each packet's process at its arrival time at the link."""

    def __init__(self, engine: SimpyEngine, arrival_ps: list[int],
                 progress: Callable[[int], None] | None):
        self.engine = engine
        self.arrival_ps = arrival_ps
        self.progress = progress

    def run(self) -> Generator[simpy.Event, Any, None]:
        env = self.engine.env
        for i, t in enumerate(self.arrival_ps):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(self.engine.packet(i))
            if self.progress is not None and (i + 1) % PROGRESS_EVERY == 0:
                self.progress(PROGRESS_EVERY)
        if self.progress is not None and len(self.arrival_ps) % PROGRESS_EVERY:
            self.progress(len(self.arrival_ps) % PROGRESS_EVERY)


class SimpyEngine:
    """Owns the Environment and the stations; ``run()`` simulates the whole workload."""

    def __init__(self, workload: Workload, progress: Callable[[int], None] | None = None):
        self.workload = workload
        self.env = LateEnvironment()
        self.result = SimResult.empty(workload.num_packets, "simpy")
        sv = workload.services()
        self.link = Station(self.env, LINK, 1, workload.link.queue)
        self.nic = (Station(self.env, NIC, workload.nic.servers, workload.nic.queue)
                    if workload.nic else None)
        self.pcie = Station(self.env, PCIE, 1, workload.pcie.queue) if workload.pcie else None
        self.hosts = ([Station(self.env, HOST, 1, workload.host.ring)
                       for _ in range(workload.host.cores)] if workload.host else [])
        self._routes = [self._route(sv, i) for i in range(workload.num_packets)]
        self.source = Source(self, sv.arrival_ps.tolist(), progress)
        for st in (self.link, self.nic, self.pcie, *self.hosts):
            if st is not None:
                self.env.process(st.run())
        self.env.process(self.source.run())

    def _route(self, sv: Any, i: int) -> list[tuple[Station, int, int]]:
        """The stations packet ``i`` visits, with its service and delay (ps) at each."""
        route = [(self.link, int(sv.link_ps[i]), 0)]
        if self.nic is not None:
            route.append((self.nic, int(sv.nic_ps[i]), int(sv.nic_delay_ps[i])))
        if self.hosts and bool(sv.to_host[i]):
            if self.pcie is not None:
                route.append((self.pcie, int(sv.pcie_ps[i]), 0))
            route.append((self.hosts[int(sv.core[i])], int(sv.host_ps[i]), 0))
        return route

    def packet(self, i: int) -> Generator[simpy.Event, Any, None]:
        """One packet's life: each station in turn, unless one is full."""
        env = self.env
        for station, service, delay in self._routes[i]:
            req = yield station.arrive(i)
            if req is None:
                self.result.lost_at[i] = station.kind
                return
            yield req
            yield env.timeout(service)
            station.servers.release(req)
            if delay:
                yield env.timeout(delay)
        self.result.depart_ps[i] = env.now

    def run(self) -> SimResult:
        started = time.perf_counter()
        self.env.run()
        self.result.wall_s = time.perf_counter() - started
        return self.result


def run(workload: Workload, *, progress: Callable[[int], None] | None = None) -> SimResult:
    """Simulate ``workload`` with a simpy process per packet."""
    return SimpyEngine(workload, progress).run()
