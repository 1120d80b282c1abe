"""The calibration points: published microbenchmarks against what the cost models give.

Only published microbenchmarks (never application programs) calibrate a model. Each point
names its source (paper, table or figure), the published value and the model's value,
computed here from the code, so ``bench/calibration.py`` and docs/calibration.md show the
models as they are and ``tests/hw/cost/test_calibration.py`` keeps the calibrated targets'
points within ``TOLERANCE``.

Host points use a trivial program (the driver's cost for the verdict, no program beyond
it): the papers' programs are the minimal ones (drop, MAC swap and transmit, redirect,
counting pass). hXDP points run the corpus' equivalents (build/xdp/xdp_drop.o, xdp_tx.o)
through the VLIW model; they are listed with their error but are not yet calibrated (the
hXDP compiler optimisations, issue 12 item 3, are not modelled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hw.cost.host import XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, HostCost
from hw.targets import load_target

TOLERANCE = 0.05
CALIBRATED = ("host", "host-hxdp")
XDP_PAPER = "XDP paper (CoNEXT 2018)"
HXDP_PAPER = "hXDP paper (OSDI 2020)"
_DATA = "bench01_baseline.org"

# (verdict, figure, data table, Mpps over 1..6 cores)
XDP_PAPER_CURVES = (
    (XDP_DROP, "Fig. 3 (XDP)", "xdp_drop_data_rx_cqe_compress, RX=512",
     (23.86, 45.51, 67.80, 88.82, 99.36, 108.61)),
    (XDP_TX, "Fig. 5 (XDP same NIC)", "xdp_tx_data03_256",
     (16.90, 34.85, 51.88, 68.95, 70.16, 68.74)),
    (XDP_REDIRECT, "Fig. 5 (XDP different NIC)", "xdp_redirect_data, RX-size=256",
     (8.64, 16.74, 25.74, 34.19, 41.46, 46.06)),
)
VERDICT_NAMES = {XDP_DROP: "XDP_DROP", XDP_PASS: "XDP_PASS", XDP_TX: "XDP_TX",
                 XDP_REDIRECT: "XDP_REDIRECT"}


@dataclass(frozen=True)
class Point:
    """One published measurement and the model's value for it (Mpps)."""

    target: str
    what: str
    source: str
    published: float
    model: float | None
    note: str = ""

    @property
    def error(self) -> float | None:
        """(model - published) / published, or None when the model gives no value."""
        return None if self.model is None else (self.model - self.published) / self.published

    @property
    def calibrated(self) -> bool:
        return self.target in CALIBRATED


def _capacity(hc: HostCost, cores: int, verdict: int) -> float:
    return hc.capacity_mpps(cores, hc.core_ns(verdict, 0.0), hc.bus_for(verdict))


def host_points() -> list[Point]:
    """The XDP paper's curves and counting XDP_PASS on ``host``; the hXDP paper's x86
    baseline on ``host-hxdp``."""
    hc = HostCost.from_target(load_target("host"), carry=1.0)
    points = []
    for verdict, fig, table, curve in XDP_PAPER_CURVES:
        for cores, mpps in enumerate(curve, start=1):
            points.append(Point("host", f"{VERDICT_NAMES[verdict]}, {cores} core(s)",
                                f"{XDP_PAPER}, {fig}; {_DATA}, {table}", mpps,
                                _capacity(hc, cores, verdict)))
    points.append(Point("host", "counting XDP_PASS into the stack, 1 core",
                        f"{XDP_PAPER}, sec. 4.1 (4.5 Mpps, 13.3 ns of XDP)", 4.5,
                        _capacity(hc, 1, XDP_PASS)))
    points.append(Point("host", "function call, 1.3 ns", f"{XDP_PAPER}, sec. 4.4", 1.3, None,
                        "not a model parameter: a program's calls are in its measured "
                        "BPF_PROG_TEST_RUN time"))
    hx = HostCost.from_target(load_target("host-hxdp"), carry=1.0)
    for verdict, mpps in ((XDP_DROP, 38.0), (XDP_TX, 12.0), (XDP_REDIRECT, 11.0)):
        points.append(Point("host-hxdp", f"{VERDICT_NAMES[verdict]}, 1 core @3.7 GHz",
                            f"{HXDP_PAPER}, sec. 5.2.2 / Fig. 13", mpps,
                            _capacity(hx, 1, verdict)))
    return points


def hxdp_points(corpus: str | os.PathLike[str]) -> list[Point]:
    """The hXDP paper's baseline microbenchmarks on ``hxdp``, from the corpus' xdp_drop and
    xdp_tx objects (skipped when they are not built)."""
    from ebpf.loader.elf import load
    from ebpf.vm.machine import Vm
    from hw.cost.nic import nic_service

    target = load_target("hxdp")
    packet = bytes(12) + b"\x08\x00" + bytes(50)
    points = []
    for name, what, published in (("xdp_drop", "XDP_DROP (all optimisations, early exit)",
                                   52.0),
                                  ("xdp_tx", "XDP_TX (MAC swap)", 22.5)):
        path = Path(corpus) / f"{name}.o"
        if not path.exists():
            continue
        obj = load(path)
        prog = obj.programs[0]
        trace = Vm(obj, prog).run_xdp(packet).trace
        svc = nic_service(target, obj, prog, [trace])
        points.append(Point("hxdp", what, f"{HXDP_PAPER}, sec. 5.2.2 / Fig. 13", published,
                            svc.capacity_mpps(), "before the line rate"))
    return points


def all_points(corpus: str | os.PathLike[str] | None = None) -> list[Point]:
    """Every point: the host profiles', and hXDP's when ``corpus`` (build/xdp) is given."""
    return host_points() + (hxdp_points(corpus) if corpus is not None else [])


def markdown(points: list[Point]) -> str:
    """The points as a Markdown table."""
    lines = ["| target | measurement | source | published Mpps | model Mpps | error |",
             "|---|---|---|---:|---:|---:|"]
    for p in points:
        model = "-" if p.model is None else f"{p.model:.2f}"
        err = "-" if p.error is None else f"{100 * p.error:+.1f} %"
        if p.note:
            err += f" ({p.note})"
        lines.append(f"| {p.target} | {p.what} | {p.source} | {p.published:g} | {model} | "
                     f"{err} |")
    return "\n".join(lines)
