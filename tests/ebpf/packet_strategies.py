"""Hypothesis strategies for packets, built with scapy, for differential tests of XDP programs.

``packets()`` draws frames as bytes: Ethernet with zero, one (802.1Q) or two (802.1ad outer +
802.1Q inner, QinQ) VLAN tags, then IPv4 (options, fragments, wrong IHL, wrong total
length, wrong version), IPv6 (with a chain of extension headers), ARP or an unknown
EtherType, then TCP (bad data offsets included), UDP, ICMP, ICMPv6 or raw bytes. A drawn
frame may then be malformed as a whole: cut short at any byte from 14 on (XDP never sees
less than an Ethernet header), bytes overwritten, or padded to a jumbo frame of up to
9000 bytes. Addresses, ports and MACs come from the ``sim.packets`` pools most of the
time, so the prepared map states in examples/xdp/scenarios are hit, and are random
otherwise.

Every strategy is deterministic in what Hypothesis draws: large fills (jumbo padding) are
expanded from a drawn seed rather than drawn byte by byte, which keeps examples small.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_EOL, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

from sim.packets import JUMBO_LEN, MIN_FRAME, POOL_MACS, POOL_PORTS, POOL_V4, POOL_V6

# --- fields: a pool value three times in four, else anything ------------------------------


def _pooled(pool: st.SearchStrategy, anything: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(pool, pool, pool, anything)


def ipv4_addresses() -> st.SearchStrategy[str]:
    """IPv4 addresses as dotted strings: POOL_V4 mostly, any address otherwise."""
    return _pooled(st.sampled_from(POOL_V4), st.ip_addresses(v=4).map(str))


def ipv6_addresses() -> st.SearchStrategy[str]:
    """IPv6 addresses: POOL_V6 mostly, any address otherwise."""
    return _pooled(st.sampled_from(POOL_V6), st.ip_addresses(v=6).map(str))


def ports() -> st.SearchStrategy[int]:
    """TCP/UDP ports: POOL_PORTS mostly, 0..65535 otherwise."""
    return _pooled(st.sampled_from(POOL_PORTS), st.integers(0, 0xFFFF))


def macs() -> st.SearchStrategy[str]:
    """MAC addresses "aa:bb:...": POOL_MACS mostly, any 6 bytes otherwise."""
    return _pooled(st.sampled_from(POOL_MACS),
                   st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":")))


def payloads(max_size: int = 64) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


# --- L4 -----------------------------------------------------------------------------------

TCP_FLAGS = ("S", "SA", "A", "PA", "F", "FA", "R", "RA", "", "SAFRPUEC")


@st.composite
def tcp(draw: st.DrawFn) -> Packet:
    """A TCP header (sometimes with a data offset below 5 or past the data) and payload."""
    seg = TCP(sport=draw(ports()), dport=draw(ports()), flags=draw(st.sampled_from(TCP_FLAGS)),
              seq=draw(st.integers(0, 0xFFFFFFFF)), ack=draw(st.integers(0, 0xFFFFFFFF)))
    if draw(st.integers(0, 9)) == 0:
        seg.dataofs = draw(st.integers(0, 15))
    return seg / Raw(draw(payloads()))


@st.composite
def udp(draw: st.DrawFn) -> Packet:
    """A UDP header and payload; the checksum computed, or zero ("none"), or any value."""
    dgram = UDP(sport=draw(ports()), dport=draw(ports()))
    how = draw(st.sampled_from(("computed", "computed", "zero", "any")))
    if how == "zero":
        dgram.chksum = 0
    elif how == "any":
        dgram.chksum = draw(st.integers(0, 0xFFFF))
    return dgram / Raw(draw(payloads()))


@st.composite
def icmp(draw: st.DrawFn) -> Packet:
    """ICMP: an echo request half the time (code 0, or not), otherwise any type."""
    kind = draw(st.one_of(st.just(8), st.sampled_from((0, 3, 5, 8, 11, 13)),
                          st.integers(0, 255)))
    code = draw(st.sampled_from((0, 0, 0, 1))) if kind == 8 else draw(st.integers(0, 15))
    return ICMP(type=kind, code=code, id=draw(st.integers(0, 0xFFFF)),
                seq=draw(st.integers(0, 0xFFFF))) / Raw(draw(payloads(32)))


@st.composite
def icmpv6(draw: st.DrawFn) -> Packet:
    """ICMPv6 echo request or reply."""
    cls = draw(st.sampled_from((ICMPv6EchoRequest, ICMPv6EchoReply)))
    return cls(id=draw(st.integers(0, 0xFFFF)), seq=draw(st.integers(0, 0xFFFF)),
               data=draw(payloads(32)))


def raw_l4() -> st.SearchStrategy[Packet]:
    return payloads().map(Raw)


# --- L3 -----------------------------------------------------------------------------------

IPV4_OPTIONS = (
    lambda n: [IPOption_RR(routers=["0.0.0.0"] * n)],
    lambda n: [IPOption_NOP()] * n + [IPOption_EOL()],
    lambda n: [IPOption_RR(routers=["10.0.0.1"] * n), IPOption_NOP()],
)


@st.composite
def ipv4(draw: st.DrawFn) -> Packet:
    """IPv4 over TCP, UDP, ICMP or raw bytes; with options, as a fragment, or malformed.

    Malformed: an IHL of 0..15 that does not match the header, a total length of any
    value, or a version other than 4.
    """
    l4 = draw(st.one_of(tcp(), udp(), icmp(), raw_l4()))
    pkt = IP(src=draw(ipv4_addresses()), dst=draw(ipv4_addresses()),
             ttl=draw(st.sampled_from((64, 1, 2, 0, 255))), tos=draw(st.integers(0, 255)),
             id=draw(st.integers(0, 0xFFFF)))
    if isinstance(l4, Raw):
        pkt.proto = draw(st.sampled_from((6, 17, 1, 47, 58, 255)))
    if draw(st.integers(0, 4)) == 0:
        make = draw(st.sampled_from(IPV4_OPTIONS))
        pkt.options = make(draw(st.integers(1, 8)))
    if draw(st.integers(0, 4)) == 0:
        pkt.flags = draw(st.sampled_from(("MF", "DF", "", "MF+DF")))
        pkt.frag = draw(st.sampled_from((0, 1, 8, 185, 0x1FFF)))
    malformed = draw(st.sampled_from(("no", "no", "no", "no", "ihl", "len", "version")))
    if malformed == "ihl":
        pkt.ihl = draw(st.integers(0, 15))
    elif malformed == "len":
        pkt.len = draw(st.integers(0, 0xFFFF))
    elif malformed == "version":
        pkt.version = draw(st.integers(0, 15))
    return pkt / l4


IPV6_EXT = (IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrDestOpt,
            lambda: IPv6ExtHdrFragment(offset=0, m=1, id=7))


@st.composite
def ipv6(draw: st.DrawFn) -> Packet:
    """IPv6 over TCP, UDP, ICMPv6 or raw bytes, after 0..10 extension headers."""
    pkt: Packet = IPv6(src=draw(ipv6_addresses()), dst=draw(ipv6_addresses()),
                       hlim=draw(st.sampled_from((64, 1, 0, 255))),
                       tc=draw(st.integers(0, 255)), fl=draw(st.integers(0, 0xFFFFF)))
    for make in draw(st.lists(st.sampled_from(IPV6_EXT), max_size=10)):
        pkt = pkt / make()
    l4 = draw(st.one_of(tcp(), udp(), icmpv6(), raw_l4()))
    pkt = pkt / l4
    if draw(st.integers(0, 9)) == 0:
        pkt[IPv6].plen = draw(st.integers(0, 0xFFFF))
    return pkt


@st.composite
def arp(draw: st.DrawFn) -> Packet:
    return ARP(op=draw(st.sampled_from((1, 2))), psrc=draw(ipv4_addresses()),
               pdst=draw(ipv4_addresses()), hwsrc=draw(macs()))


# --- L2 and whole frames ------------------------------------------------------------------

@st.composite
def frames(draw: st.DrawFn) -> Packet:
    """A well-formed-looking Ethernet frame: 0, 1 or 2 VLAN tags, then IPv4 / IPv6 / ARP or
    an unknown EtherType with raw bytes (the IP layers may still be malformed inside)."""
    eth: Packet = Ether(src=draw(macs()), dst=draw(macs()))
    tags = draw(st.sampled_from((0, 0, 0, 1, 2)))
    if tags == 2:
        eth = eth / Dot1AD(vlan=draw(st.integers(0, 4095)), prio=draw(st.integers(0, 7))) / \
            Dot1Q(vlan=draw(st.integers(0, 4095)))
    elif tags == 1:
        eth = eth / Dot1Q(vlan=draw(st.integers(0, 4095)))
    kind = draw(st.sampled_from(("ip", "ip", "ip", "ip6", "arp", "other")))
    if kind == "ip":
        return eth / draw(ipv4())
    if kind == "ip6":
        return eth / draw(ipv6())
    if kind == "arp":
        return eth / draw(arp())
    eth.lastlayer().type = draw(st.integers(0x600, 0xFFFF).filter(
        lambda t: t not in (0x0800, 0x86DD, 0x8100, 0x88A8)))
    return eth / Raw(draw(payloads()))


def _truncate(raw: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(MIN_FRAME, max(MIN_FRAME, len(raw))).map(lambda n: raw[:n])


def _corrupt(raw: bytes) -> st.SearchStrategy[bytes]:
    def apply(edits: list[tuple[int, int]]) -> bytes:
        data = bytearray(raw)
        for pos, value in edits:
            data[pos % len(data)] = value
        return bytes(data)

    return st.lists(st.tuples(st.integers(0, JUMBO_LEN), st.integers(0, 255)), min_size=1,
                    max_size=4).map(apply)


def _jumbo(raw: bytes) -> st.SearchStrategy[bytes]:
    def pad(size_seed: tuple[int, int]) -> bytes:
        size, seed = size_seed
        return raw + random.Random(seed).randbytes(max(0, size - len(raw)))

    return st.tuples(st.integers(max(len(raw), 1500), JUMBO_LEN), st.integers(0, 2**32 - 1)) \
        .map(pad)


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    """One frame as bytes: ``frames()`` as built, or truncated at any byte >= 14, with a few
    bytes overwritten, or padded to a jumbo frame (up to 9000 bytes)."""
    raw = bytes(draw(frames()))
    if len(raw) < MIN_FRAME:
        raw = raw.ljust(MIN_FRAME, b"\0")
    how = draw(st.sampled_from(("as-is", "as-is", "as-is", "truncate", "corrupt", "jumbo")))
    if how == "truncate":
        return draw(_truncate(raw))
    if how == "corrupt":
        return draw(_corrupt(raw))
    if how == "jumbo":
        return draw(_jumbo(raw))
    return raw
