"""Seeded random packets for differential runs and traces, built with scapy.

The mix covers what XDP parsers meet: Ethernet with zero, one or two VLAN tags (802.1Q and
802.1ad QinQ), IPv4 with and without options and as fragments, IPv6, TCP (SYN, SYN-ACK,
data), UDP, ICMP and ICMPv6 echo, ARP, plus malformed frames: truncated at any byte, wrong
IHL, bad lengths, runts (down to the 14-byte Ethernet header, the least XDP
sees), and jumbo frames. Addresses and ports are drawn mostly from small
pools (``POOL_*``) so that prepared map states (firewall rules, routes, VIPs, NAT rules) are
hit as well as missed; the remaining draws are uniformly random.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

POOL_V4 = ("10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.10", "172.16.0.5", "203.0.113.7",
           "198.51.100.20", "10.10.10.10")
POOL_V6 = ("2001:db8::1", "2001:db8::2", "fd00::10", "2001:db8:1::5")
POOL_PORTS = (80, 443, 53, 22, 8080, 5000, 12345, 1024)
POOL_MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02", "52:54:00:12:34:56")
JUMBO_LEN = 9000
MIN_FRAME = 14  # an Ethernet header: XDP (and BPF_PROG_TEST_RUN) never sees less


class PacketGenerator:
    """Random packets from one seed: the same seed gives the same bytes."""

    def __init__(self, seed: int = 0, *, pool_bias: float = 0.75, malformed: float = 0.15):
        self.rng = random.Random(seed)
        self.pool_bias = pool_bias
        self.malformed = malformed

    # --- fields -------------------------------------------------------------------------
    def _pick(self, pool: tuple, rand) -> object:
        return self.rng.choice(pool) if self.rng.random() < self.pool_bias else rand()

    def ipv4(self) -> str:
        return str(self._pick(POOL_V4, lambda: ".".join(
            str(self.rng.randrange(256)) for _ in range(4))))

    def ipv6(self) -> str:
        return str(self._pick(POOL_V6, lambda: ":".join(
            f"{self.rng.randrange(65536):x}" for _ in range(8))))

    def port(self) -> int:
        return int(self._pick(POOL_PORTS, lambda: self.rng.randrange(65536)))

    def mac(self) -> str:
        return str(self._pick(POOL_MACS, lambda: ":".join(
            f"{self.rng.randrange(256):02x}" for _ in range(6))))

    def payload(self, max_len: int = 64) -> bytes:
        return self.rng.randbytes(self.rng.randrange(max_len + 1))

    # --- layers -------------------------------------------------------------------------
    def l4(self, v6: bool) -> Packet:
        kind = self.rng.choices(("tcp", "udp", "icmp", "raw"), (4, 4, 2, 1))[0]
        if kind == "tcp":
            flags = self.rng.choice(("S", "SA", "A", "PA", "F", "R", "S"))
            return TCP(sport=self.port(), dport=self.port(), flags=flags,
                       seq=self.rng.randrange(1 << 32)) / Raw(self.payload())
        if kind == "udp":
            return UDP(sport=self.port(), dport=self.port()) / Raw(self.payload())
        if kind == "icmp":
            if v6:
                return ICMPv6EchoRequest(id=self.rng.randrange(65536), seq=self.rng.randrange(100))
            return ICMP(type=self.rng.choice((8, 8, 0, 3, 11)), id=self.rng.randrange(65536),
                        seq=self.rng.randrange(100)) / Raw(self.payload(32))
        return Raw(self.payload())

    def l3(self) -> Packet:
        kind = self.rng.choices(("ip", "ip6", "arp", "other"), (8, 3, 1, 1))[0]
        if kind == "ip":
            ip = IP(src=self.ipv4(), dst=self.ipv4(), ttl=self.rng.choice((64, 1, 2, 255)),
                    id=self.rng.randrange(65536))
            if self.rng.random() < 0.15:
                ip.options = [IPOption_RR(routers=["0.0.0.0"] * self.rng.randrange(1, 5))]
            if self.rng.random() < 0.1:  # fragment: more-fragments and/or an offset
                ip.flags = "MF"
                ip.frag = self.rng.choice((0, 0, 8, 185))
            return ip / self.l4(False)
        if kind == "ip6":
            return IPv6(src=self.ipv6(), dst=self.ipv6(), hlim=self.rng.choice((64, 1))) / \
                self.l4(True)
        if kind == "arp":
            return ARP(psrc=self.ipv4(), pdst=self.ipv4())
        return Raw(self.payload())

    def frame(self) -> Packet:
        eth = Ether(src=self.mac(), dst=self.mac())
        tags = self.rng.choices((0, 1, 2), (8, 2, 1))[0]
        if tags == 2:
            eth = eth / Dot1AD(vlan=self.rng.randrange(4096)) / Dot1Q(vlan=self.rng.randrange(4096))
        elif tags == 1:
            eth = eth / Dot1Q(vlan=self.rng.randrange(4096))
        inner = self.l3()
        if isinstance(inner, Raw):
            (eth.lastlayer() if tags else eth).type = self.rng.randrange(0x600, 0x10000)
        return eth / inner

    # --- packets ------------------------------------------------------------------------
    def packet(self) -> bytes:
        """One frame: well-formed most of the time, malformed with probability ``malformed``."""
        raw = bytes(self.frame())
        if self.rng.random() >= self.malformed:
            return raw
        how = self.rng.choice(("truncate", "runt", "corrupt", "jumbo", "ihl"))
        if how == "truncate":
            return raw[: self.rng.randrange(MIN_FRAME, len(raw) + 1)]
        if how == "runt":
            return raw[: self.rng.randrange(MIN_FRAME, 34)]
        if how == "corrupt":
            data = bytearray(raw)
            for _ in range(self.rng.randrange(1, 4)):
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
            return bytes(data)
        if how == "jumbo":
            return raw + self.rng.randbytes(JUMBO_LEN - len(raw))
        data = bytearray(raw)  # a wrong IHL or total length right after the Ethernet header
        if len(data) > 16:
            data[14] = (data[14] & 0xF0) | self.rng.choice((0, 3, 15))
        return bytes(data)

    def packets(self, count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield self.packet()


def random_packets(count: int, seed: int = 0, **kwargs) -> list[bytes]:
    """``count`` packets from ``seed`` (see PacketGenerator for the mix)."""
    return list(PacketGenerator(seed, **kwargs).packets(count))
