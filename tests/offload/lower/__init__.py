"""Tests of offload.lower: small C programs lowered, scheduled and run against the VM.

``map_c`` compiles a snippet with the corpus flags and maps it with ``offload.mapper``;
``frames`` is a packet set that walks the usual header paths (IPv4 with options, VLAN tags,
IPv6, TCP, UDP, ICMP) at every truncation length plus a seeded random mix.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from offload.mapper import MapReport, map_program
from sim.packets import random_packets
from tests.conftest import compile_bpf

PRELUDE = '#include "common.h"\n'
COMMON_H = Path(__file__).resolve().parents[3] / "examples" / "xdp" / "common.h"


@cache
def frames() -> tuple[bytes, ...]:
    """Header-walking frames cut at every length from 14 bytes, and 400 random packets."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

    eth = Ether(src="02:00:00:00:00:01", dst="52:54:00:12:34:56")
    full = [
        eth / IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01\x01\x01\x00") /
        TCP(sport=1000, dport=23) / b"tt",
        eth / Dot1AD(vlan=3) / Dot1Q(vlan=4) / IP(src="10.0.0.3", dst="10.0.0.4") /
        UDP(sport=19, dport=53) / b"u",
        eth / Dot1Q(vlan=7) / IP(dst="10.0.0.9") / ICMP(type=8) / b"ping",
        eth / IP(dst="10.0.0.9") / ICMP(type=8) / b"ping",
        eth / IP(flags="MF") / TCP(),
        eth / IPv6() / TCP(dport=23),
        eth / IPv6() / UDP(),
    ]
    out = []
    for f in full:
        raw = bytes(f)
        out.extend(raw[:n] for n in range(14, len(raw) + 1))
    return tuple(out) + tuple(random_packets(400, seed=3))


def map_c(tmp_path: Path, body: str, target: str = "pipe", name: str = "prog",
          packets: list[bytes] | None = None, scenario: str | None = None) -> MapReport:
    """Compile ``body`` (after ``#include "common.h"``) and map it on ``target``."""
    (tmp_path / "common.h").write_text(COMMON_H.read_text())
    obj = compile_bpf(tmp_path, PRELUDE + body, name)
    return map_program(obj, target, time_limit_s=5,
                       packets=list(frames()) if packets is None else packets,
                       scenario=scenario)
