"""Packets built per second: the numpy builder (sim.packets) against scapy on the same mix.

    .venv/bin/python bench/packets.py [--packets N] [--scapy-packets M]

Times ``random_packets(N)`` (columns, headers, checksums and the list of bytes objects),
and, as the reference, scapy building M of the same frames from their parsed layers
(``bytes(Ether(frame))`` with lengths and checksums recomputed: what the old generator
did per packet). Read the ratio: absolute times depend on the machine and its load (the
CPU time of the process is printed beside the wall time: on a shared machine it is the
fairer figure).
"""

from __future__ import annotations

import argparse
import sys
import time

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from sim.packets import PacketGenerator, random_packets

RECOMPUTED = {IP: ("len", "chksum"), TCP: ("chksum",), UDP: ("len", "chksum"),
              ICMP: ("chksum",), IPv6: ("plen",), ICMPv6EchoRequest: ("cksum",)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--scapy-packets", type=int, default=2000)
    args = ap.parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    random_packets(args.packets, seed=1)
    numpy_s, numpy_cpu = time.perf_counter() - t0, time.process_time() - c0
    parsed = []
    for frame in PacketGenerator(1).frames(args.scapy_packets).to_list():
        pkt = Ether(frame)
        for layer, fields in RECOMPUTED.items():
            if pkt.haslayer(layer):
                for f in fields:
                    setattr(pkt[layer], f, None)
        parsed.append(pkt)
    t0 = time.perf_counter()
    for pkt in parsed:
        bytes(pkt)
    scapy_s = time.perf_counter() - t0
    per_numpy = numpy_s / args.packets * 1e9
    per_scapy = scapy_s / args.scapy_packets * 1e9
    print(f"numpy builder: {args.packets} packets in {numpy_s:.2f} s wall, {numpy_cpu:.2f} s "
          f"CPU ({per_numpy:,.0f} ns per packet)")
    print(f"scapy build:   {args.scapy_packets} packets in {scapy_s:.2f} s ({per_scapy:,.0f} "
          f"ns per packet)")
    print(f"speed-up: {per_scapy / per_numpy:,.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
