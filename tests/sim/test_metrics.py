"""sim.metrics: the steady-state window (warm-up left out, convergence, losses)."""

from __future__ import annotations

import numpy as np
import pytest

from sim import engine_fast
from sim.metrics import steady_state, summarize
from sim.model import HostModel, LinkModel, Outcome, PacketClasses, Workload
from sim.spec import parse_traffic
from sim.traffic import generate

XDP_DROP = 1


def _host_workload(n: int, host_ns: float, cores: int = 1, ring: int | None = 1024):
    traffic = generate(parse_traffic("64B@100G", line_rate_gbps=100), n, 3,
                       line_rate_gbps=100)
    classes = PacketClasses.from_outcomes([Outcome(verdict=XDP_DROP, host_ns=host_ns)],
                                          np.zeros(n, np.int32), has_nic=False, has_host=True)
    return Workload(arrival_ns=traffic.arrival_ns, size=traffic.size, flow=traffic.flow,
                    classes=classes, link=LinkModel(gbps=100.0),
                    host=HostModel(cores=cores, ring=ring))


def test_overload_reports_losses_at_the_service_rate():
    """A core of 50 ns under 148.8 Mpps: the steady window achieves 20 Mpps (1000 / 50, the
    D/D/1 service rate), converges, and loses the rest: 1 - 20 / 148.8 of its packets."""
    w = _host_workload(150_000, 50.0)
    result = engine_fast.run(w)
    st = steady_state(w, result, warmup_ns=200_000)
    assert st["achieved_mpps"] == pytest.approx(20.0, rel=1e-3)
    assert st["converged"]
    assert st["lost"] > 0
    assert st["loss_fraction"] == pytest.approx(1 - 20.0 / (1e3 / 6.72), rel=0.01)


def test_underload_has_no_losses_and_discards_warmup():
    """At 4 cores of 20 ns (200 Mpps) nothing is lost; the window starts after the warm-up."""
    w = _host_workload(50_000, 20.0, cores=4)
    doc = summarize(w, engine_fast.run(w), warmup_ns=100_000)
    st = doc["steady"]
    assert st["lost"] == 0 and st["converged"]
    first = float(w.arrival_ns[0])
    assert st["packets"] == int(np.count_nonzero(w.arrival_ns >= first + 100_000))
    assert st["achieved_mpps"] == pytest.approx(1e3 / 6.72, rel=0.01)
