"""Seeded random packets for differential runs and traces, built in bulk with numpy.

The mix covers what XDP parsers meet: Ethernet with zero, one or two VLAN tags (802.1Q and
802.1ad QinQ), IPv4 with and without options and as fragments, IPv6, TCP (SYN, SYN-ACK,
data), UDP, ICMP and ICMPv6 echo, ARP, plus malformed frames: truncated at any byte, wrong
IHL, bad lengths, runts (down to the 14-byte Ethernet header, the least XDP
sees), and jumbo frames. Addresses and ports are drawn mostly from small
pools (``POOL_*``) so that prepared map states (firewall rules, routes, VIPs, NAT rules) are
hit as well as missed; the remaining draws are uniformly random.

Every field is a numpy column drawn from one ``numpy.random.Generator`` (the same seed
gives the same bytes); ``sim.packet_build`` lays the columns out as frames. Scapy is the
test oracle for the layout, not the builder.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from sim.packet_build import (
    L3_ARP,
    L3_IP4,
    L3_IP6,
    L3_OTHER,
    L4_ICMP,
    L4_RAW,
    L4_TCP,
    L4_UDP,
    Columns,
    PacketArray,
    build,
    zeros,
)

POOL_V4 = ("10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.10", "172.16.0.5", "203.0.113.7",
           "198.51.100.20", "10.10.10.10")
POOL_V6 = ("2001:db8::1", "2001:db8::2", "fd00::10", "2001:db8:1::5")
POOL_PORTS = (80, 443, 53, 22, 8080, 5000, 12345, 1024)
POOL_MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02", "52:54:00:12:34:56")
JUMBO_LEN = 9000
MIN_FRAME = 14  # an Ethernet header: XDP (and BPF_PROG_TEST_RUN) never sees less


TCP_FLAGS = (0x02, 0x12, 0x10, 0x18, 0x01, 0x04, 0x02)  # S, SA, A, PA, F, R, S
MALFORMATIONS = ("truncate", "runt", "corrupt", "jumbo", "ihl")


def _mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def _kinds(rng: np.random.Generator, n: int, weights: tuple[int, ...]) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(weights), size=n, p=p / p.sum()).astype(np.uint8)


class PacketGenerator:
    """Random packets from one seed: the same seed gives the same bytes."""

    def __init__(self, seed: int = 0, *, pool_bias: float = 0.75, malformed: float = 0.15):
        self.rng = np.random.default_rng(seed)
        self.pool_bias = pool_bias
        self.malformed = malformed

    # --- fields -------------------------------------------------------------------------
    def _pick(self, pool: np.ndarray, rand: np.ndarray) -> np.ndarray:
        """Per entry: a pool value with probability ``pool_bias``, else ``rand``'s."""
        n = len(rand)
        use = self.rng.random(n) < self.pool_bias
        choice = pool[self.rng.integers(0, len(pool), size=n)]
        return np.where(use.reshape((n,) + (1,) * (rand.ndim - 1)), choice, rand)

    def ipv4(self, n: int) -> np.ndarray:
        pool = np.array([int(ipaddress.IPv4Address(a)) for a in POOL_V4], np.uint64)
        return self._pick(pool, self.rng.integers(0, 1 << 32, size=n, dtype=np.uint64))

    def ipv6(self, n: int) -> np.ndarray:
        pool = np.array([list(ipaddress.IPv6Address(a).packed) for a in POOL_V6], np.uint8)
        return self._pick(pool, self.rng.integers(0, 256, size=(n, 16), dtype=np.uint8))

    def port(self, n: int) -> np.ndarray:
        return self._pick(np.array(POOL_PORTS, np.uint64),
                          self.rng.integers(0, 1 << 16, size=n, dtype=np.uint64))

    def mac(self, n: int) -> np.ndarray:
        return self._pick(np.array([_mac(m) for m in POOL_MACS], np.uint64),
                          self.rng.integers(0, 1 << 48, size=n, dtype=np.uint64))

    # --- frames -------------------------------------------------------------------------
    def columns(self, n: int) -> Columns:
        """The header columns of ``n`` well-formed frames."""
        r = self.rng
        c = zeros(n, body_width=64)
        c.dmac, c.smac = self.mac(n), self.mac(n)
        c.tags = _kinds(r, n, (8, 2, 1))
        c.vlan_outer = r.integers(0, 4096, size=n).astype(np.uint16)
        c.vlan_inner = r.integers(0, 4096, size=n).astype(np.uint16)
        c.l3 = np.array([L3_IP4, L3_IP6, L3_ARP, L3_OTHER], np.uint8)[_kinds(r, n, (8, 3, 1, 1))]
        c.ethertype = r.integers(0x600, 0x10000, size=n).astype(np.uint16)
        c.src4, c.dst4 = self.ipv4(n), self.ipv4(n)
        c.src6, c.dst6 = self.ipv6(n), self.ipv6(n)
        v6 = c.l3 == L3_IP6
        c.ttl = np.where(v6, np.array([64, 1], np.uint8)[r.integers(0, 2, size=n)],
                         np.array([64, 1, 2, 255], np.uint8)[r.integers(0, 4, size=n)])
        c.ipid = r.integers(0, 1 << 16, size=n).astype(np.uint16)
        c.rr_routers = np.where(r.random(n) < 0.15, r.integers(1, 5, size=n), 0).astype(np.uint8)
        frag_off = np.array([0, 0, 8, 185], np.uint16)[r.integers(0, 4, size=n)]
        c.frag = np.where(r.random(n) < 0.1, 0x2000 | frag_off, 0).astype(np.uint16)
        c.l4 = np.array([L4_TCP, L4_UDP, L4_ICMP, L4_RAW], np.uint8)[_kinds(r, n, (4, 4, 2, 1))]
        c.sport, c.dport = self.port(n), self.port(n)
        c.tcp_flags = np.array(TCP_FLAGS, np.uint8)[r.integers(0, len(TCP_FLAGS), size=n)]
        c.seq = r.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
        c.icmp_type = np.array([8, 8, 0, 3, 11], np.uint8)[r.integers(0, 5, size=n)]
        c.icmp_id = r.integers(0, 1 << 16, size=n).astype(np.uint16)
        c.icmp_seq = r.integers(0, 100, size=n).astype(np.uint16)
        c.body = r.integers(0, 256, size=(n, 64), dtype=np.uint8)
        icmp = np.isin(c.l3, (L3_IP4, L3_IP6)) & (c.l4 == L4_ICMP)
        c.body_len = np.select([c.l3 == L3_ARP, icmp & v6, icmp], [0, 0, r.integers(0, 33, size=n)],
                               r.integers(0, 65, size=n)).astype(np.int64)
        return c

    def frames(self, n: int) -> PacketArray:
        """``n`` well-formed frames."""
        return build(self.columns(n))

    # --- packets ------------------------------------------------------------------------
    def packets(self, count: int) -> list[bytes]:
        """Frames, each malformed with probability ``malformed`` (one of MALFORMATIONS)."""
        arr = self.frames(count)
        r = self.rng
        buf, start, length = arr.buf, arr.start, arr.length.copy()
        bad = r.random(count) < self.malformed
        how = np.where(bad, r.integers(0, len(MALFORMATIONS), size=count), -1)
        u = r.random(count)
        sel = how == 0  # truncate at any byte, keeping the Ethernet header
        length[sel] = MIN_FRAME + (u[sel] * (length[sel] - MIN_FRAME + 1)).astype(np.int64)
        sel = how == 1  # runt: at most 33 bytes
        length[sel] = np.minimum(length[sel], MIN_FRAME + (u[sel] * 20).astype(np.int64))
        sel = np.flatnonzero(how == 2)  # corrupt 1-3 bytes
        hits = r.integers(1, 4, size=len(sel))
        for k in range(3):
            rows = sel[hits > k]
            at = start[rows] + (r.random(len(rows)) * length[rows]).astype(np.int64)
            buf[at] = r.integers(0, 256, size=len(rows), dtype=np.uint8)
        rows = np.flatnonzero((how == 4) & (length > 16))  # a wrong IHL right after Ethernet
        buf[start[rows] + 14] = (buf[start[rows] + 14] & 0xF0) | np.array(
            [0, 3, 15], np.uint8)[r.integers(0, 3, size=len(rows))]
        out = PacketArray(buf, start, length).to_list()
        # jumbo: padded to JUMBO_LEN with one block of random bytes drawn once per call
        # (drawing ~9 kB per jumbo frame cost a third of building a million packets)
        fill = r.bytes(JUMBO_LEN)
        for i in np.flatnonzero(how == 3).tolist():
            out[i] += fill[:JUMBO_LEN - len(out[i])]
        return out


def random_packets(count: int, seed: int = 0, **kwargs) -> list[bytes]:
    """``count`` packets from ``seed`` (see PacketGenerator for the mix)."""
    return PacketGenerator(seed, **kwargs).packets(count)
