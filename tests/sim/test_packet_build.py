"""The vectorised frame builder against scapy: field layout, lengths and checksums."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from sim.packet_build import L3_ARP, L3_IP4, L3_IP6, L3_OTHER, build, zeros
from sim.packets import PacketGenerator

RECOMPUTED = {IP: ("len", "chksum", "ihl"), TCP: ("chksum",), UDP: ("len", "chksum"),
              ICMP: ("chksum",), IPv6: ("plen",), ICMPv6EchoRequest: ("cksum",)}


def _scapy_rebuild(frame: bytes) -> tuple[Ether, bytes]:
    """Parse ``frame`` with scapy, drop every length and checksum, let scapy recompute."""
    pkt = Ether(frame)
    again = pkt.copy()
    for layer, fields in RECOMPUTED.items():
        if again.haslayer(layer):
            for f in fields:
                setattr(again[layer], f, None)
    return pkt, bytes(again)


@pytest.mark.parametrize("seed", range(12))
def test_frames_match_scapy(seed):
    """Every well-formed frame is what scapy builds from its parsed fields: layout, lengths
    and checksums (IPv4 header, TCP, UDP, ICMP, ICMPv6) recomputed by scapy agree."""
    gen = PacketGenerator(seed)
    cols = gen.columns(400)
    frames = build(cols).to_list()
    for i, frame in enumerate(frames):
        if cols.l3[i] == L3_OTHER:
            continue  # a random EtherType: scapy may read the payload as anything
        pkt, rebuilt = _scapy_rebuild(frame)
        assert rebuilt == frame, f"seed {seed} packet {i}: {pkt.summary()}"
        if cols.l3[i] == L3_IP4:
            assert pkt[IP].src == str(ipaddress.IPv4Address(int(cols.src4[i])))
            assert pkt[IP].ttl == cols.ttl[i]
        elif cols.l3[i] == L3_IP6:
            assert pkt[IPv6].dst == str(ipaddress.IPv6Address(bytes(cols.dst6[i])))
        elif cols.l3[i] == L3_ARP:
            assert pkt[ARP].pdst == str(ipaddress.IPv4Address(int(cols.dst4[i])))
        if pkt.haslayer(TCP) or pkt.haslayer(UDP):
            l4 = pkt[TCP] if pkt.haslayer(TCP) else pkt[UDP]
            assert (l4.sport, l4.dport) == (cols.sport[i], cols.dport[i])
        if cols.tags[i] == 2:
            assert pkt[Dot1AD].vlan == cols.vlan_outer[i] and pkt[Dot1Q].vlan == cols.vlan_inner[i]


def test_zero_pad_counts_in_lengths():
    """Zero padding lengthens the frame and is covered by the IP and UDP lengths and
    checksums as scapy computes them (IPv4/UDP and IPv6/TCP)."""
    c = zeros(2)
    c.l3 = np.array([L3_IP4, L3_IP6], np.uint8)
    c.l4 = np.array([1, 0], np.uint8)  # UDP, TCP
    c.src4[:] = 0x0A000001
    c.src6[:, 15] = 1
    c.sport[:], c.dport[:] = 1234, 80
    c.pad = np.array([100, 7])
    frames = build(c).to_list()
    assert [len(f) for f in frames] == [14 + 20 + 8 + 100, 14 + 40 + 20 + 7]
    for frame in frames:
        assert _scapy_rebuild(frame)[1] == frame


def test_same_columns_same_bytes_across_chunks(monkeypatch):
    """Building in chunks gives the bytes of building at once."""
    import sim.packet_build as pb

    cols = PacketGenerator(3).columns(1000)
    whole = build(cols).to_list()
    monkeypatch.setattr(pb, "CHUNK", 97)
    assert build(cols).to_list() == whole
