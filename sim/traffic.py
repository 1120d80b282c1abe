"""Traffic for the timing model: arrival times, frame sizes, flows, packet bytes.

A ``Traffic`` is columns of numpy arrays, one entry per packet: ``arrival_ns`` (int64, ns,
nondecreasing, the instant the frame would start on the wire at the sender), ``size``
(Ethernet frame bytes including the 4-byte FCS, the RFC 2544 convention, so "64B" is the
minimum frame), ``flow`` (flow id) and ``rep`` (index into ``reps``, the distinct packet
bytes: packet i is exactly ``reps[rep[i]]``; synthetic traffic has one per flow and size,
built in bulk by ``flow_frames``, a capture one per distinct packet).

Sources:

- synthetic: sizes fixed, IMIX or a given discrete distribution; a rate in packets per
  second, Gb/s on the wire (preamble, SFD and inter-frame gap counted: 64B@100G is 148.81
  Mpps) or a percentage of the line rate; arrivals CBR (frames back to back at the rate:
  each frame is followed by a gap proportional to its own wire time, so IMIX at 100 % never
  queues; a packet rate gives equal gaps), Poisson (exponential gaps), optionally gated by
  deterministic on/off periods (the rate applies while on); flows with Zipf popularity
  (flow 0 the most popular), each with its own 5-tuple; a protocol mix decides which kind
  of packet each flow carries.
- pcap replay: timestamps from the capture (relative to its first packet), optionally
  re-scaled so that the mean rate is a given rate; the capture repeats to reach ``packets``.

Everything random comes from one seed (numpy ``Generator`` s spawned from it, one per
column, so that changing the arrival process does not change the sizes or the flows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import SimError
from sim.model import FCS_BYTES, MIN_FRAME_BYTES, PS_PER_NS, WIRE_OVERHEAD_BYTES
from sim.packet_build import L3_ARP, L3_IP4, L3_IP6, L4_ICMP, L4_RAW, L4_TCP, L4_UDP, build, zeros

# The "simple IMIX": 7 : 4 : 1 packets of 40, 576 and 1500-byte IP datagrams (Wikipedia,
# "Internet Mix", after Agilent, "The Journal of Internet Test Methodologies", 2007; RFC 6985
# "IMIX Genome" for how such mixes are specified). As Ethernet frames with 14 B header and
# 4 B FCS: 58 B (padded to the 64 B minimum), 594 B and 1518 B. Mean frame 361.8 B.
IMIX = ((64, 7), (594, 4), (1518, 1))
PROTOCOLS = ("udp", "tcp", "icmp", "udp6", "tcp6", "icmp6", "arp", "random")
DEFAULT_FLOWS = 1024
MAX_SIZES = 16
# Sub-stream numbers for the seed (np.random.SeedSequence spawn keys).
_SIZES, _GAPS, _FLOWS, _KINDS, _REPS = range(5)


class TrafficError(SimError):
    """Traffic that cannot be generated (no rate for a percentage, an empty capture, ...)."""


def wire_bytes(size: np.ndarray | int) -> np.ndarray | int:
    """Bytes a frame occupies on the wire: padded to 64, plus preamble, SFD and gap (20)."""
    return np.maximum(size, MIN_FRAME_BYTES) + WIRE_OVERHEAD_BYTES


def line_rate_pps(size: float, gbps: float) -> float:
    """Frames per second of ``size`` bytes at line rate (148.81e6 for 64 B at 100 Gb/s)."""
    return gbps * 1e9 / (float(wire_bytes(size)) * 8)


# --- what a spec says ---------------------------------------------------------------------

@dataclass(frozen=True)
class SizeDist:
    """A discrete distribution of frame sizes (bytes with FCS) with relative weights."""

    sizes: tuple[int, ...]
    weights: tuple[float, ...]
    name: str

    @classmethod
    def fixed(cls, size: int) -> SizeDist:
        return cls((size,), (1.0,), f"{size}B")

    @classmethod
    def imix(cls) -> SizeDist:
        return cls(tuple(s for s, _ in IMIX), tuple(float(w) for _, w in IMIX), "imix")

    @property
    def probabilities(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=np.float64)
        return w / w.sum()

    @property
    def mean_bytes(self) -> float:
        return float(np.dot(self.probabilities, self.sizes))

    @property
    def mean_wire_bytes(self) -> float:
        return float(np.dot(self.probabilities, wire_bytes(np.asarray(self.sizes))))


@dataclass(frozen=True)
class Rate:
    """An offered rate: ``unit`` is ``pps``, ``gbps`` (wire bits) or ``percent`` of line."""

    value: float
    unit: str

    def gbps(self, mean_wire_bytes: float, line_rate_gbps: float | None) -> float:
        """Wire Gb/s (preamble, SFD and gap included) at this rate."""
        if self.unit == "gbps":
            return self.value
        if self.unit == "pps":
            return self.value * mean_wire_bytes * 8 / 1e9
        if line_rate_gbps is None:
            raise TrafficError(f"rate {self.text}: a percentage needs the line rate")
        return self.value / 100 * line_rate_gbps

    def pps(self, mean_wire_bytes: float, line_rate_gbps: float | None) -> float:
        if self.unit == "pps":
            return self.value
        return self.gbps(mean_wire_bytes, line_rate_gbps) * 1e9 / (mean_wire_bytes * 8)

    @property
    def text(self) -> str:
        if self.unit == "gbps":
            return f"{self.value:g} Gb/s"
        if self.unit == "percent":
            return f"{self.value:g} % of line rate"
        return f"{self.value / 1e6:g} Mpps"


@dataclass(frozen=True)
class TrafficSpec:
    """What to generate; ``sim.spec.parse_traffic`` builds one from ``64B@100G,poisson``."""

    sizes: SizeDist | None = None
    """None for pcap replay (sizes from the capture)."""
    rate: Rate | None = None
    """None for pcap replay at the captured timestamps."""
    pcap: str | None = None
    process: str = "cbr"
    """``cbr`` or ``poisson``."""
    onoff_ns: tuple[float, float] | None = None
    """(on, off) durations in ns: traffic flows at ``rate`` during on, stops during off."""
    flows: int = DEFAULT_FLOWS
    zipf: float = 0.0
    """Zipf exponent of flow popularity; 0 is uniform."""
    protocols: tuple[tuple[str, float], ...] = (("udp", 1.0),)
    text: str = ""

    @property
    def duty(self) -> float:
        """Fraction of time the source is on."""
        if self.onoff_ns is None:
            return 1.0
        on, off = self.onoff_ns
        return on / (on + off)

    def describe(self) -> str:
        if self.pcap:
            what = f"pcap {self.pcap}" + (f" at {self.rate.text}" if self.rate else "")
        else:
            assert self.sizes is not None and self.rate is not None
            what = f"{self.sizes.name} at {self.rate.text} {self.process}"
        if self.onoff_ns:
            what += f", on {self.onoff_ns[0]:g} ns / off {self.onoff_ns[1]:g} ns"
        if not self.pcap:
            spread = f"zipf {self.zipf:g}" if self.zipf else "uniform"
            protos = "/".join(f"{p}:{w:g}" for p, w in self.protocols)
            what += f", {self.flows} flows ({spread}), {protos}"
        return what


# --- generated traffic --------------------------------------------------------------------

@dataclass
class Traffic:
    """Columns per packet plus the distinct packet bytes they index."""

    arrival_ns: np.ndarray
    size: np.ndarray
    flow: np.ndarray
    rep: np.ndarray
    reps: list[bytes]
    rep_labels: list[str]
    offered_pps: float
    """Mean offered packet rate (nominal: from the spec, or measured for a raw capture)."""
    description: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_packets(self) -> int:
        return len(self.arrival_ns)

    @property
    def span_ns(self) -> float:
        """Time from the first arrival to the last, ns (0 for fewer than two packets)."""
        return float(self.arrival_ns[-1] - self.arrival_ns[0]) if self.num_packets > 1 else 0.0

    @property
    def offered_gbps(self) -> float:
        """Mean offered wire rate, Gb/s."""
        mean_wire = float(np.mean(wire_bytes(self.size))) if self.num_packets else 0.0
        return self.offered_pps * mean_wire * 8 / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "packets": self.num_packets,
                "offered_mpps": self.offered_pps / 1e6, "offered_gbps": self.offered_gbps,
                "distinct_packets": len(self.reps), **self.info}


def _rngs(seed: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]


def _start_times_ps(gaps_ps: np.ndarray) -> np.ndarray:
    """Start of each packet: the sum of the gaps before it (the first starts at 0), float ps."""
    start = np.empty(len(gaps_ps), dtype=np.float64)
    if len(gaps_ps):
        start[0] = 0.0
        np.cumsum(gaps_ps[:-1], out=start[1:])
    return start


def _gate(start_ps: np.ndarray, onoff_ns: tuple[float, float] | None) -> np.ndarray:
    """Map 'on' time to real time: after every ``on`` of traffic comes ``off`` of silence."""
    if onoff_ns is None:
        return start_ps
    on, off = onoff_ns[0] * PS_PER_NS, onoff_ns[1] * PS_PER_NS
    return start_ps + np.floor(start_ps / on) * off


def _to_ns(ps: np.ndarray) -> np.ndarray:
    return np.floor(ps / PS_PER_NS + 1e-9).astype(np.int64)


def _zipf_flows(rng: np.random.Generator, n: int, flows: int, s: float) -> np.ndarray:
    if flows == 1:
        return np.zeros(n, dtype=np.int32)
    if s == 0:
        return rng.integers(0, flows, size=n, dtype=np.int32)
    weights = np.arange(1, flows + 1, dtype=np.float64) ** -s
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"),
                      flows - 1).astype(np.int32)


def zipf_probabilities(flows: int, s: float) -> np.ndarray:
    """P(flow k) for k = 0 .. flows-1: proportional to (k + 1) ** -s."""
    w = np.arange(1, flows + 1, dtype=np.float64) ** -s
    return w / w.sum()


def synthetic(spec: TrafficSpec, packets: int, seed: int = 0, *,
              line_rate_gbps: float | None = None) -> Traffic:
    """``packets`` packets as ``spec`` describes them, reproducible from ``seed``."""
    if spec.sizes is None or spec.rate is None:
        raise TrafficError("synthetic traffic needs sizes and a rate")
    if packets < 1:
        raise TrafficError(f"packets: expected at least 1, got {packets}")
    r_sizes, r_gaps, r_flows, r_kinds, r_reps = _rngs(seed)
    dist = spec.sizes
    nsizes = len(dist.sizes)
    size_idx = (np.zeros(packets, dtype=np.int64) if nsizes == 1 else
                r_sizes.choice(nsizes, size=packets, p=dist.probabilities))
    size = np.asarray(dist.sizes, dtype=np.int32)[size_idx]

    # The rate while the source is on; the mean offered rate is that times the duty cycle.
    on_pps = spec.rate.pps(dist.mean_wire_bytes, line_rate_gbps)
    if not on_pps > 0:
        raise TrafficError(f"rate {spec.rate.text}: must be positive")
    if spec.process == "poisson":
        gaps = r_gaps.exponential(1e12 / on_pps, size=packets)
    elif spec.rate.unit == "pps":
        gaps = np.full(packets, 1e12 / on_pps)
    else:  # constant bit rate: each frame's gap is its own wire time at the rate
        on_gbps = spec.rate.gbps(dist.mean_wire_bytes, line_rate_gbps)
        gaps = wire_bytes(size.astype(np.float64)) * 8 * (PS_PER_NS / on_gbps)
    arrival_ns = _to_ns(_gate(_start_times_ps(gaps), spec.onoff_ns))

    flow = _zipf_flows(r_flows, packets, spec.flows, spec.zipf)
    # Each flow carries one protocol (by the mix) and its own addresses and ports; each
    # distinct (flow, size) is one template: the exact bytes of its packets.
    names = [p for p, _ in spec.protocols]
    weights = np.asarray([w for _, w in spec.protocols], dtype=np.float64)
    proto_of_flow = r_kinds.choice(len(names), size=spec.flows, p=weights / weights.sum())
    used, rep = np.unique(flow.astype(np.int64) * nsizes + size_idx, return_inverse=True)
    t_flow, t_size = np.divmod(used, nsizes)
    frames = np.asarray(dist.sizes, dtype=np.int64)[t_size]
    reps = flow_frames([names[k] for k in proto_of_flow[t_flow]], t_flow, frames - FCS_BYTES,
                       int(r_reps.integers(1 << 62)))
    labels = [f"{names[k]} flow {f} {n}B" for k, f, n in
              zip(proto_of_flow[t_flow].tolist(), t_flow.tolist(), frames.tolist(), strict=True)]
    offered = on_pps * spec.duty
    return Traffic(arrival_ns=arrival_ns, size=size, flow=flow,
                   rep=rep.astype(np.int32).reshape(-1), reps=reps, rep_labels=labels,
                   offered_pps=offered, description=spec.describe(),
                   info={"seed": seed, "process": spec.process})


# --- the packets of a flow ----------------------------------------------------------------

FLOW_SRC4 = 0x0A800000  # 10.128.0.0/9: flow f's IPv4 source is 10.128.0.0 + f
FLOW_SRC6 = bytes.fromhex("20010db8000f00000000000000000000")  # 2001:db8:f::/48 + f
FLOW_SMAC = 0x020000100000  # 02:00:00:10:00:00 + f
SPORT_BASE = 1024  # source ports 1024..65535
SPORT_HASH = 40503  # odd multiplier (Knuth's 16-bit golden ratio): ports spread over flows
L3L4 = {"udp": (L3_IP4, L4_UDP), "tcp": (L3_IP4, L4_TCP), "icmp": (L3_IP4, L4_ICMP),
        "udp6": (L3_IP6, L4_UDP), "tcp6": (L3_IP6, L4_TCP), "icmp6": (L3_IP6, L4_ICMP),
        "arp": (L3_ARP, L4_RAW)}


def flow_frames(protos: list[str], flow: np.ndarray, length: np.ndarray, seed: int
                ) -> list[bytes]:
    """One frame (without FCS) per entry: protocol ``protos[i]`` of flow ``flow[i]``, padded
    with zeros to ``length[i]`` bytes when the headers are shorter.

    A flow's 5-tuple follows from its id: the source address is unique per flow
    (``FLOW_SRC4`` / ``FLOW_SRC6`` + id, modulo the prefix) and so is the source port
    (``SPORT_BASE`` + a multiplicative hash of the id); the destination address and port
    come from ``sim.packets``' pools (75 %) or at random, drawn per flow from ``seed``, so
    prepared map states (rules, routes, VIPs) see hits and misses. ``random`` flows are
    one packet each from ``sim.packets`` (any mix, malformed too; the length is theirs).
    """
    from sim.packets import POOL_MACS, PacketGenerator, random_packets

    n = len(protos)
    for p in set(protos):
        if p not in L3L4 and p != "random":
            raise TrafficError(f"unknown protocol {p!r} (expected one of "
                               f"{', '.join(PROTOCOLS)})")
    flow = np.asarray(flow, dtype=np.int64)
    c = zeros(n)
    kinds = np.array([L3L4.get(p, (L3_IP4, L4_UDP)) for p in protos], np.uint8).reshape(n, 2)
    c.l3, c.l4 = kinds[:, 0].copy(), kinds[:, 1].copy()
    c.smac = (FLOW_SMAC + (flow & 0xFFFFF)).astype(np.uint64)
    c.dmac = np.full(n, int(POOL_MACS[0].replace(":", ""), 16), np.uint64)
    c.src4 = (FLOW_SRC4 + (flow & 0x7FFFFF)).astype(np.uint32)
    src6 = np.frombuffer(FLOW_SRC6, np.uint8)[None, :].repeat(n, axis=0)
    for k in range(4):
        src6[:, 15 - k] = (flow >> (8 * k)) & 0xFF
    c.src6 = src6
    c.sport = (SPORT_BASE + (flow * SPORT_HASH) % (65536 - SPORT_BASE)).astype(np.uint16)
    # Destinations drawn once per distinct flow (in flow order), shared by its sizes.
    uniq, idx = np.unique(flow, return_inverse=True)
    draws = PacketGenerator(seed)
    m = len(uniq)
    dst4, dst6, dport = draws.ipv4(m), draws.ipv6(m), draws.port(m)
    idx = idx.reshape(-1)
    c.dst4, c.dst6, c.dport = dst4[idx].astype(np.uint32), dst6[idx], dport[idx].astype(np.uint16)
    c.tcp_flags[:] = 0x10  # ACK: an established flow's data
    c.icmp_type[:] = 8
    c.icmp_id = (flow & 0xFFFF).astype(np.uint16)
    head = build(c).length
    c.pad = np.maximum(np.asarray(length, dtype=np.int64) - head, 0)
    out = build(c).to_list()
    rand = [i for i, p in enumerate(protos) if p == "random"]
    if rand:
        for i, pkt in zip(rand, random_packets(len(rand), seed), strict=True):
            out[i] = pkt
    return out


# --- pcap replay --------------------------------------------------------------------------

def flow_key(data: bytes) -> bytes:
    """The bytes that identify a packet's flow: addresses, protocol and ports when the
    frame is IPv4 or IPv6 (after up to two VLAN tags), else the Ethernet header."""
    off, etype = 12, int.from_bytes(data[12:14], "big") if len(data) >= 14 else 0
    while etype in (0x8100, 0x88A8) and len(data) >= off + 6:
        off += 4
        etype = int.from_bytes(data[off:off + 2], "big")
    ip = off + 2
    if etype == 0x0800 and len(data) >= ip + 20:
        ihl = (data[ip] & 0x0F) * 4
        proto = data[ip + 9]
        ports = data[ip + ihl:ip + ihl + 4] if proto in (6, 17) else b""
        return b"4" + data[ip + 12:ip + 20] + bytes([proto]) + ports
    if etype == 0x86DD and len(data) >= ip + 40:
        proto = data[ip + 6]
        ports = data[ip + 40:ip + 44] if proto in (6, 17) else b""
        return b"6" + data[ip + 8:ip + 40] + bytes([proto]) + ports
    return b"e" + data[:14]


def from_pcap(path: str | os.PathLike[str], *, rate: Rate | None = None,
              packets: int | None = None, line_rate_gbps: float | None = None,
              onoff_ns: tuple[float, float] | None = None,
              max_reps: int | None = None) -> Traffic:
    """Replay a capture: its timestamps (re-scaled to ``rate`` when given), its sizes (+4 B
    FCS) and flows (5-tuple); distinct packets are kept once each (``max_reps``: at most
    that many, later new packets then repeat their flow's first packet: an approximation,
    for tests only)."""
    from sim.pcap import read_pcap

    captured = read_pcap(path)
    if not captured:
        raise TrafficError(f"{os.fspath(path)}: the capture holds no packets")
    n0 = len(captured)
    t = np.asarray([p.time_ns for p in captured], dtype=np.int64)
    t = t - t.min()
    if np.any(np.diff(t) < 0):  # captures can be out of order: replay in timestamp order
        order = np.argsort(t, kind="stable")
        captured = [captured[i] for i in order]
        t = t[order]
    size0 = np.asarray([len(p.data) + FCS_BYTES for p in captured], dtype=np.int32)
    flow_ids: dict[bytes, int] = {}
    rep_ids: dict[bytes, int] = {}
    flow_rep: dict[int, int] = {}
    reps: list[bytes] = []
    flow0 = np.empty(n0, dtype=np.int32)
    rep0 = np.empty(n0, dtype=np.int32)
    for i, p in enumerate(captured):
        f = flow_ids.setdefault(flow_key(p.data), len(flow_ids))
        r = rep_ids.get(p.data)
        if r is None:
            if max_reps is None or len(reps) < max_reps:
                r = rep_ids[p.data] = len(reps)
                reps.append(p.data)
            else:
                r = flow_rep.get(f, f % len(reps))
        flow_rep.setdefault(f, r)
        flow0[i], rep0[i] = f, r
    mean_wire = float(np.mean(wire_bytes(size0)))
    span = int(t[-1])
    if rate is not None:
        pps = rate.pps(mean_wire, line_rate_gbps)
        if not pps > 0:
            raise TrafficError(f"rate {rate.text}: must be positive")
        if span == 0 or n0 == 1:
            t = np.floor(np.arange(n0) * (1e9 / pps)).astype(np.int64)
        else:
            t = np.floor(t * ((n0 - 1) / pps * 1e9 / span)).astype(np.int64)
        span = int(t[-1])
        offered = pps
    else:
        if span == 0 and n0 > 1:
            raise TrafficError(f"{os.fspath(path)}: all {n0} timestamps are equal: give a "
                               f"rate (pcap:FILE@RATE) to replay it")
        offered = (n0 - 1) / span * 1e9 if n0 > 1 else 0.0
    n = packets or n0
    period = span + (max(1, round(span / (n0 - 1))) if n0 > 1 else 1000)
    reps_needed = -(-n // n0)
    tile = np.arange(reps_needed, dtype=np.int64).repeat(n0)[:n]
    arrival = np.tile(t, reps_needed)[:n] + tile * period
    if onoff_ns is not None:
        arrival = _to_ns(_gate(arrival.astype(np.float64) * PS_PER_NS, onoff_ns))
        offered *= onoff_ns[0] / (onoff_ns[0] + onoff_ns[1])
    if offered == 0.0 and n > 1:
        offered = (n - 1) / max(1, int(arrival[-1] - arrival[0])) * 1e9
    desc = f"pcap {os.fspath(path)} ({n0} packets, {len(flow_ids)} flows)"
    if rate is not None:
        desc += f" re-scaled to {rate.text}"
    return Traffic(arrival_ns=arrival, size=np.tile(size0, reps_needed)[:n],
                   flow=np.tile(flow0, reps_needed)[:n], rep=np.tile(rep0, reps_needed)[:n],
                   reps=reps, rep_labels=[f"pcap#{i}" for i in range(len(reps))],
                   offered_pps=offered, description=desc,
                   info={"pcap_packets": n0, "flows": len(flow_ids),
                         "looped": reps_needed > 1})


def generate(spec: TrafficSpec, packets: int | None, seed: int = 0, *,
             line_rate_gbps: float | None = None, base_dir: str | None = None) -> Traffic:
    """Synthetic traffic or pcap replay, whichever ``spec`` asks for."""
    if spec.pcap is not None:
        path = spec.pcap
        if base_dir and not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        return from_pcap(path, rate=spec.rate, packets=packets, line_rate_gbps=line_rate_gbps,
                         onoff_ns=spec.onoff_ns)
    return synthetic(spec, packets if packets is not None else 100_000, seed,
                     line_rate_gbps=line_rate_gbps)
