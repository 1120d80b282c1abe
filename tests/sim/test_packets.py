"""The seeded packet generator: determinism and the protocol mix it promises."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from sim.packets import JUMBO_LEN, MIN_FRAME, random_packets


def test_same_seed_same_bytes():
    """The same seed gives the same packets; another seed gives others."""
    assert random_packets(200, seed=7) == random_packets(200, seed=7)
    assert random_packets(200, seed=7) != random_packets(200, seed=8)


def test_mix_covers_the_protocols():
    """2000 packets include every layer the parsers in the corpus handle, and malformed ones."""
    packets = random_packets(2000, seed=1)
    layers = {layer for p in packets for layer in (Dot1Q, Dot1AD, IP, IPv6, TCP, UDP, ICMP)
              if Ether(p).haslayer(layer)}
    assert layers == {Dot1Q, Dot1AD, IP, IPv6, TCP, UDP, ICMP}
    assert any(len(p) == JUMBO_LEN for p in packets)
    assert min(len(p) for p in packets) >= MIN_FRAME
    assert any(Ether(p).haslayer(IP) and Ether(p)[IP].options for p in packets)
    assert any(Ether(p).haslayer(IP) and Ether(p)[IP].flags.MF for p in packets)
