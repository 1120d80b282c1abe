"""The calibration points: published microbenchmarks against what the cost models give.

Only published microbenchmarks (never application programs) calibrate a model. Each point
names its source (paper, table or figure), the published value and the model's value,
computed here from the code, so ``bench/calibration.py`` and docs/calibration.md show the
models as they are and ``tests/hw/cost/test_calibration.py`` keeps the calibrated targets'
points within ``TOLERANCE``.

Host points use a trivial program (the driver's cost for the verdict, no program beyond
it): the papers' programs are the minimal ones (drop, MAC swap and transmit, redirect,
counting pass). hXDP points run the paper's microbenchmarks, written as programs in
``hw.cost.hxdp_bench``, through the VLIW model with all its optimisations. Three hXDP
numbers are fitted (``start_latency_cycles`` on XDP_DROP with early exit, ``tx_cycles`` on
XDP_TX, ``redirect_cycles`` on redirect); XDP_DROP without the exit optimisations and
the helper-call curve are independent checks; all of them are held within ``TOLERANCE``.
The map-access points are listed with their error and what is missing (docs/calibration.md),
not held: ``NOT_MATCHED`` names them, and the test fails when one of them comes within the
tolerance (so it gets held) or another point leaves it. nfp has one published point, at the
10 GbE line rate (a lower bound on the model, held). ``call_args_what_if`` shows Figs. 14
and 15 with the VLIW model's off-by-default ``call_args`` rule (never held).
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.cost.host import XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, HostCost
from hw.targets import load_target

TOLERANCE = 0.05
NOT_MATCHED = "NOT MATCHED"
"""How a point's note starts when the model misses it for a reason the note gives."""
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
    held: bool | None = None
    """Whether the test holds this point within TOLERANCE (None: when its target is
    calibrated)."""

    @property
    def error(self) -> float | None:
        """(model - published) / published, or None when the model gives no value."""
        return None if self.model is None else (self.model - self.published) / self.published

    @property
    def not_matched(self) -> bool:
        """The model misses this point, for the reason its note gives (not held)."""
        return self.note.startswith(NOT_MATCHED)

    @property
    def within(self) -> bool:
        """The model's value is within ``TOLERANCE`` of the published one."""
        return self.error is not None and abs(self.error) <= TOLERANCE

    @property
    def calibrated(self) -> bool:
        return self.target in CALIBRATED if self.held is None else self.held


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


def hxdp_points() -> list[Point]:
    """The hXDP paper's microbenchmarks (sec. 5.2.2, Figs. 13-15) on ``hxdp``."""
    from hw.cost import hxdp_bench as hb
    from hw.rtc.vliw import OPTIMIZATIONS

    target = load_target("hxdp")
    fig13 = f"{HXDP_PAPER}, sec. 5.2.2 / Fig. 13"
    no_exit_opts = tuple(o for o in OPTIMIZATIONS if o not in ("early_exit", "movi_exit"))
    points = [
        Point("hxdp", "XDP_DROP, all optimisations (early exit)", fig13, 52.0,
              hb.run(target, hb.drop()).mpps, "fitted: start_latency_cycles", True),
        Point("hxdp", "XDP_DROP, parametrized / early exit off", fig13, 22.0,
              hb.run(target, hb.drop(), optimizations=no_exit_opts).mpps,
              "independent check", True),
        Point("hxdp", "XDP_TX (the artifact's one-row image)", fig13, 22.5,
              hb.run(target, hb.tx()).mpps, "fitted: tx_cycles", True),
        Point("hxdp", "redirect (bpf_redirect)", fig13, 15.0,
              hb.run(target, hb.redirect()).mpps, "fitted: redirect_cycles", True),
    ]
    for key in (1, 2, 4, 8, 16):
        points.append(Point("hxdp", f"map lookup + count, {key} B key",
                            f"{HXDP_PAPER}, sec. 5.2.2 / Fig. 14", 22.4,
                            hb.run(target, hb.map_access(key), key_bytes=key).mpps,
                            f"{NOT_MATCHED}: 6 rows (key, call, null test, load-add-store); "
                            "the published 7 cycles need 5", False))
    for calls, mpps in zip((1, 10, 20, 30, 40), (22.4, 9.8, 6.05, 4.3, 3.4), strict=True):
        points.append(Point("hxdp", f"{calls} csum_diff call(s), then XDP_TX",
                            f"{HXDP_PAPER}, sec. 5.2.2 / Fig. 15", mpps,
                            hb.run(target, hb.helper_calls(calls)).mpps,
                            "independent check: one row per further call (helper_args)", True))
    return points


SOSCON = ("D. T. Lee, \"XDP\", SOSCON 2019 keynote, slides 192-194 "
          "(github.com/DanielTimLee/soscon19_xdp, drop/xdp-drop.c)")
SOSCON_LINK_GBPS = 10.0
"""The offload test's link: 10 GbE (the slides' 14,880,952 pps = 10 GbE at 64 B)."""

SOSCON_PACKET = (bytes(12) + b"\x08\x00"
                 + bytes.fromhex("4500002e00000000401100000a0100010a010002")
                 + bytes.fromhex("006d04d2001a0000") + bytes(18))
"""pktgen's 60 B UDP frame (64 B on the wire with the FCS) from 10.1.0.1:109 to
10.1.0.2:1234, the test's traffic (slide 67)."""


def soscon_udp_drop() -> str:
    """The SOSCON 2019 offload test's program (drop/xdp-drop.c) in eBPF assembler: bounds
    checks, then XDP_DROP for IPv4/UDP to 10.1.0.2:1234, XDP_PASS for the rest."""
    return """
    ldxw %r2, [%r1+4]
    ldxw %r1, [%r1+0]
    mov %r3, %r1
    add %r3, 14
    jgt %r3, %r2, +14
    ldxh %r3, [%r1+12]
    jne %r3, 0x0008, +14
    mov %r3, %r1
    add %r3, 34
    jgt %r3, %r2, +9
    ldxw %r3, [%r1+30]
    jne %r3, 0x0200010a, +9
    ldxb %r3, [%r1+23]
    jne %r3, 17, +7
    mov %r3, %r1
    add %r3, 42
    jgt %r3, %r2, +2
    ldxh %r3, [%r1+36]
    jne %r3, 0xd204, +2
    mov %r0, 1
    exit
    mov %r0, 2
    exit"""


def nfp_points() -> list[Point]:
    """The one published offloaded-XDP rate on a Netronome NIC that was found: SOSCON 2019's
    XDP_DROP at the 10 GbE line rate, against the NPU model on the same program and link.
    It bounds the model from below only (line rate binds both); docs/calibration.md lists
    what was searched for a rate above line rate and found nothing."""
    from hw.cost import hxdp_bench as hb
    from hw.cost.nic import nic_service
    from hw.rtc.common import wire_mpps

    target = load_target("nfp")
    obj, prog, trace = hb.bench_object(soscon_udp_drop(), packet=SOSCON_PACKET)
    capacity = nic_service(target, obj, prog, [trace]).capacity_mpps()
    line = wire_mpps(SOSCON_LINK_GBPS, 64)
    return [Point("nfp", "XDP_DROP of the matching UDP flow, 64 B, 10 GbE link", SOSCON,
                  target.get_reference("xdp_drop_10g_mpps"), min(capacity, line),
                  f"line rate binds: a lower bound only (model capacity {capacity:.0f} Mpps "
                  f"on {target.cores.usable} cores)", True)]


def call_args_what_if() -> list[Point]:
    """Figs. 14 and 15 as the hXDP artifact's compiler would schedule the calls
    (``call_args``, off by default in the model): shown, never held; Fig. 15 with our
    benchmark program and with the EtherType test of the artifact's ``xdp_csum_kern.c``
    (docs/calibration.md)."""
    from hw.cost import hxdp_bench as hb
    from hw.rtc.vliw import OPTIMIZATIONS

    target = load_target("hxdp")
    opts = (*OPTIMIZATIONS, "call_args")
    note = "what-if, not held"
    points = [Point("hxdp", f"map lookup + count, {key} B key, call_args",
                    f"{HXDP_PAPER}, sec. 5.2.2 / Fig. 14", 22.4,
                    hb.run(target, hb.map_access(key), key_bytes=key,
                           optimizations=opts).mpps, note, False)
              for key in (1, 2, 4, 8, 16)]
    for test, label in ((False, "our program"), (True, "EtherType test first")):
        for calls, mpps in zip((1, 10, 20, 30, 40), (22.4, 9.8, 6.05, 4.3, 3.4), strict=True):
            points.append(Point("hxdp", f"{calls} csum_diff call(s), call_args, {label}",
                                f"{HXDP_PAPER}, sec. 5.2.2 / Fig. 15", mpps,
                                hb.run(target, hb.helper_calls(calls, test),
                                       optimizations=opts).mpps, note, False))
    return points


def all_points() -> list[Point]:
    """Every point: the host profiles', hXDP's and nfp's."""
    return host_points() + hxdp_points() + nfp_points()


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
