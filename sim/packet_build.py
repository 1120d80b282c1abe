"""Frames built in bulk with numpy: header columns in, wire bytes out.

A ``Columns`` holds one entry per packet for every header field (Ethernet, up to two VLAN
tags, IPv4 with record-route options and fragment fields, IPv6, ARP, TCP, UDP, ICMP and
ICMPv6 echo), plus a payload: ``body`` bytes (a matrix, each row read up to
``body_len``) followed by ``pad`` zero bytes. ``build`` lays the headers out per layer
(one matrix per layer, aligned at column 0, so a checksum is a masked sum along a row),
computes lengths and checksums for all packets at once, and packs everything into one
flat buffer (``PacketArray``). Zero padding adds nothing to a ones'-complement sum, so it
is never materialised before the final buffer.

The byte layout is what scapy emits for the same fields (scapy defaults: TCP window 8192,
data offset 5; IPv4 record-route option with pointer 4, padded with end-of-list; ARP
who-has for Ethernet/IPv4 with the sender MAC equal to the frame's source); the tests
check it against scapy as the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Layer kinds (column values).
L3_IP4, L3_IP6, L3_ARP, L3_OTHER = range(4)
L4_TCP, L4_UDP, L4_ICMP, L4_RAW = range(4)
IPPROTO = np.array([6, 17, 1, 0], np.uint8)
"""IPv4 protocol number by L4_* (scapy's IP()/Raw() leaves proto 0)."""
NEXTHDR = np.array([6, 17, 58, 59], np.uint8)
"""IPv6 next header by L4_* (59: no next header, what scapy writes for IPv6()/Raw())."""
TPID_8021Q, TPID_8021AD = 0x8100, 0x88A8
ETH_IP4, ETH_IP6, ETH_ARP = 0x0800, 0x86DD, 0x0806
TCP_WINDOW = 8192  # scapy's TCP default
L2_MAX, L3_MAX, L4_MAX = 22, 40, 20


@dataclass
class Columns:
    """Per-packet header fields (numpy arrays of one length ``n``); see the module doc."""

    n: int
    dmac: np.ndarray  # uint64, 48 bits
    smac: np.ndarray
    tags: np.ndarray  # 0, 1 or 2 VLAN tags (2: 802.1ad outer, 802.1Q inner)
    vlan_outer: np.ndarray
    vlan_inner: np.ndarray
    l3: np.ndarray  # L3_*
    ethertype: np.ndarray  # used for L3_OTHER only
    src4: np.ndarray  # uint32 (IPv4 and ARP)
    dst4: np.ndarray
    src6: np.ndarray  # (n, 16) uint8
    dst6: np.ndarray
    ttl: np.ndarray  # IPv4 TTL, IPv6 hop limit
    ipid: np.ndarray
    rr_routers: np.ndarray  # IPv4 record-route slots (0: no options)
    frag: np.ndarray  # IPv4 flags + fragment offset field (16 bits)
    l4: np.ndarray  # L4_* (IPv4 / IPv6 only)
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    seq: np.ndarray  # TCP sequence number (uint32)
    icmp_type: np.ndarray  # IPv4: echo (0, 8) carries id and seq; other types four zeros
    icmp_id: np.ndarray
    icmp_seq: np.ndarray
    body: np.ndarray  # (n, W) uint8: payload bytes, row i valid up to body_len[i]
    body_len: np.ndarray
    pad: np.ndarray  # zero bytes after the body (counted in IP / UDP lengths)


@dataclass
class PacketArray:
    """Packets as one buffer: packet i is ``buf[start[i]:start[i] + length[i]]`` followed
    by ``pad[i]`` zero bytes (kept out of the buffer: padding is most of a large frame)."""

    buf: np.ndarray  # uint8
    start: np.ndarray
    length: np.ndarray
    pad: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.length)

    def to_list(self) -> list[bytes]:
        d = self.buf.tobytes()
        ends = (self.start + self.length).tolist()
        if self.pad is None or not self.pad.any():
            return [d[a:b] for a, b in zip(self.start.tolist(), ends, strict=True)]
        z = bytes(int(self.pad.max()))
        return [d[a:b] + z[:p] for a, b, p in zip(self.start.tolist(), ends,
                                                 self.pad.tolist(), strict=True)]


def zeros(n: int, body_width: int = 0) -> Columns:
    """Columns of ``n`` plain packets (every field zero / IPv4 / TCP), to fill in."""
    z = lambda dt: np.zeros(n, dtype=dt)  # noqa: E731
    return Columns(n=n, dmac=z(np.uint64), smac=z(np.uint64), tags=z(np.uint8),
                   vlan_outer=z(np.uint16), vlan_inner=z(np.uint16), l3=z(np.uint8),
                   ethertype=z(np.uint16), src4=z(np.uint32), dst4=z(np.uint32),
                   src6=np.zeros((n, 16), np.uint8), dst6=np.zeros((n, 16), np.uint8),
                   ttl=np.full(n, 64, np.uint8), ipid=z(np.uint16), rr_routers=z(np.uint8),
                   frag=z(np.uint16), l4=z(np.uint8), sport=z(np.uint16), dport=z(np.uint16),
                   tcp_flags=z(np.uint8), seq=z(np.uint32), icmp_type=z(np.uint8),
                   icmp_id=z(np.uint16), icmp_seq=z(np.uint16),
                   body=np.zeros((n, body_width), np.uint8), body_len=z(np.int64),
                   pad=z(np.int64))


# --- writing fields ------------------------------------------------------------------------

def _put(m: np.ndarray, rows: np.ndarray, col: np.ndarray | int, value: np.ndarray,
         width: int) -> None:
    """Write ``value`` (integers) big-endian, ``width`` bytes, at column ``col`` of ``rows``."""
    if isinstance(col, int):  # one assignment of the big-endian bytes
        be = np.asarray(value, dtype=np.uint64).astype(">u8").view(np.uint8)
        m[rows, col:col + width] = be.reshape(-1, 8)[:, 8 - width:]
        return
    v = np.asarray(value, dtype=np.uint64)
    for k in range(width):
        m[rows, col + k] = ((v >> np.uint64(8 * (width - 1 - k))) & np.uint64(0xFF)).astype(
            np.uint8)


def _put_bytes(m: np.ndarray, rows: np.ndarray, col: np.ndarray | int,
               value: np.ndarray) -> None:
    for k in range(value.shape[1]):
        m[rows, col + k] = value[:, k]


def _sum16(m: np.ndarray) -> np.ndarray:
    """Per row: the sum of the big-endian 16-bit words of ``m`` (rows are zero beyond their
    length, so an odd length reads as padded with a zero byte), as uint64."""
    if m.shape[1] % 2:
        m = np.concatenate([m, np.zeros((len(m), 1), np.uint8)], axis=1)
    return np.ascontiguousarray(m).view(">u2").sum(axis=1, dtype=np.uint64)


def _fold(total: np.ndarray) -> np.ndarray:
    """The Internet checksum (RFC 1071) of a 64-bit sum: fold the carries, complement."""
    s = total.astype(np.uint64)
    for _ in range(4):
        s = (s & np.uint64(0xFFFF)) + (s >> np.uint64(16))
    return (~s & np.uint64(0xFFFF)).astype(np.uint64)


def _words(value: np.ndarray, nbytes: int) -> np.ndarray:
    """Sum of the 16-bit words of an integer column of ``nbytes`` bytes (uint64)."""
    v = np.asarray(value, dtype=np.uint64)
    out = np.zeros(len(v), np.uint64)
    for k in range(nbytes // 2):
        out += (v >> np.uint64(16 * k)) & np.uint64(0xFFFF)
    return out


# --- building ------------------------------------------------------------------------------

def _layer2(c: Columns) -> tuple[np.ndarray, np.ndarray]:
    m = np.zeros((c.n, L2_MAX), np.uint8)
    allr = np.arange(c.n)
    _put(m, allr, 0, c.dmac, 6)
    _put(m, allr, 6, c.smac, 6)
    etype = np.select([c.l3 == L3_IP4, c.l3 == L3_IP6, c.l3 == L3_ARP],
                      [ETH_IP4, ETH_IP6, ETH_ARP], c.ethertype.astype(np.int64)).astype(np.uint64)
    one, two = np.flatnonzero(c.tags == 1), np.flatnonzero(c.tags == 2)
    none = np.flatnonzero(c.tags == 0)
    _put(m, none, 12, etype[none], 2)
    _put(m, one, 12, np.full(len(one), TPID_8021Q), 2)
    _put(m, one, 14, c.vlan_outer[one] & 0xFFF, 2)
    _put(m, one, 16, etype[one], 2)
    _put(m, two, 12, np.full(len(two), TPID_8021AD), 2)
    _put(m, two, 14, c.vlan_outer[two] & 0xFFF, 2)
    _put(m, two, 16, np.full(len(two), TPID_8021Q), 2)
    _put(m, two, 18, c.vlan_inner[two] & 0xFFF, 2)
    _put(m, two, 20, etype[two], 2)
    return m, 14 + 4 * c.tags.astype(np.int64)


def _layer4(c: Columns, ip: np.ndarray, payload_len: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """L4 headers of the IP packets ``ip`` (checksums filled in later) and their lengths."""
    m = np.zeros((c.n, L4_MAX), np.uint8)
    length = np.zeros(c.n, np.int64)
    v6 = c.l3 == L3_IP6
    tcp = ip[c.l4[ip] == L4_TCP]
    _put(m, tcp, 0, c.sport[tcp], 2)
    _put(m, tcp, 2, c.dport[tcp], 2)
    _put(m, tcp, 4, c.seq[tcp], 4)
    m[tcp, 12] = 5 << 4
    m[tcp, 13] = c.tcp_flags[tcp]
    _put(m, tcp, 14, np.full(len(tcp), TCP_WINDOW), 2)
    length[tcp] = 20
    udp = ip[c.l4[ip] == L4_UDP]
    _put(m, udp, 0, c.sport[udp], 2)
    _put(m, udp, 2, c.dport[udp], 2)
    _put(m, udp, 4, 8 + payload_len[udp], 2)
    length[udp] = 8
    icmp = ip[c.l4[ip] == L4_ICMP]
    icmp6, icmp4 = icmp[v6[icmp]], icmp[~v6[icmp]]
    m[icmp6, 0] = 128  # ICMPv6 echo request
    _put(m, icmp6, 4, c.icmp_id[icmp6], 2)
    _put(m, icmp6, 4 + 2, c.icmp_seq[icmp6], 2)
    m[icmp4, 0] = c.icmp_type[icmp4]
    echo = icmp4[np.isin(c.icmp_type[icmp4], (0, 8))]
    _put(m, echo, 4, c.icmp_id[echo], 2)
    _put(m, echo, 6, c.icmp_seq[echo], 2)
    length[icmp] = 8
    return m, length


CHUNK = 1 << 16  # packets built at once: bounds the temporary matrices (modelling choice)


def _rows(c: Columns, lo: int, hi: int) -> Columns:
    kw = {k: (v[lo:hi] if isinstance(v, np.ndarray) else v) for k, v in vars(c).items()}
    kw["n"] = hi - lo
    return Columns(**kw)


def build(c: Columns) -> PacketArray:
    """The frames of ``c`` (without FCS), lengths and checksums computed."""
    if c.n <= CHUNK:
        return _build(c)
    parts = [_build(_rows(c, lo, min(c.n, lo + CHUNK))) for lo in range(0, c.n, CHUNK)]
    length = np.concatenate([p.length for p in parts])
    start = np.zeros(c.n, np.int64)
    np.cumsum(length[:-1], out=start[1:])
    pad = c.pad.astype(np.int64)
    return PacketArray(np.concatenate([p.buf for p in parts]), start, length,
                       pad if pad.any() else None)


def _build(c: Columns) -> PacketArray:
    n = c.n
    l2, l2_len = _layer2(c)
    ip4 = np.flatnonzero(c.l3 == L3_IP4)
    ip6 = np.flatnonzero(c.l3 == L3_IP6)
    ip = np.flatnonzero((c.l3 == L3_IP4) | (c.l3 == L3_IP6))
    body_len = c.body_len.astype(np.int64)
    payload_len = body_len + c.pad.astype(np.int64)
    body = np.where(np.arange(c.body.shape[1])[None, :] < body_len[:, None], c.body, 0).astype(
        np.uint8)
    body_sum = _sum16(body)
    l4, l4_len = _layer4(c, ip, payload_len)
    l4_total = l4_len + payload_len

    l3 = np.zeros((n, L3_MAX), np.uint8)
    l3_len = np.zeros(n, np.int64)
    # IPv4 (options: record route, 3 + 4 k bytes, one end-of-list byte of padding)
    k = c.rr_routers.astype(np.int64)
    ihl = 5 + np.where(k[ip4] > 0, k[ip4] + 1, 0)
    l3[ip4, 0] = (0x40 | ihl).astype(np.uint8)
    _put(l3, ip4, 2, 4 * ihl + l4_total[ip4], 2)
    _put(l3, ip4, 4, c.ipid[ip4], 2)
    _put(l3, ip4, 6, c.frag[ip4], 2)
    l3[ip4, 8] = c.ttl[ip4]
    l3[ip4, 9] = IPPROTO[c.l4[ip4]]
    _put(l3, ip4, 12, c.src4[ip4], 4)
    _put(l3, ip4, 16, c.dst4[ip4], 4)
    opt = ip4[k[ip4] > 0]
    l3[opt, 20] = 7
    l3[opt, 21] = (3 + 4 * k[opt]).astype(np.uint8)
    l3[opt, 22] = 4
    l3_len[ip4] = 4 * ihl
    ck = _fold(_sum16(l3[ip4]))
    _put(l3, ip4, 10, ck, 2)
    # IPv6
    l3[ip6, 0] = 0x60
    _put(l3, ip6, 4, l4_total[ip6], 2)
    l3[ip6, 6] = NEXTHDR[c.l4[ip6]]
    l3[ip6, 7] = c.ttl[ip6]
    _put_bytes(l3, ip6, 8, c.src6[ip6])
    _put_bytes(l3, ip6, 24, c.dst6[ip6])
    l3_len[ip6] = 40
    # ARP who-has, Ethernet / IPv4
    arp = np.flatnonzero(c.l3 == L3_ARP)
    _put(l3, arp, 0, np.full(len(arp), 1), 2)
    _put(l3, arp, 2, np.full(len(arp), ETH_IP4), 2)
    l3[arp, 4], l3[arp, 5] = 6, 4
    _put(l3, arp, 6, np.full(len(arp), 1), 2)
    _put(l3, arp, 8, c.smac[arp], 6)
    _put(l3, arp, 14, c.src4[arp], 4)
    _put(l3, arp, 24, c.dst4[arp], 4)
    l3_len[arp] = 28

    # L4 checksums: header + body (+ zero pad, which adds nothing) + pseudo-header (not ICMP)
    v6 = c.l3 == L3_IP6
    kind = np.where((c.l3 == L3_IP4) | (c.l3 == L3_IP6), c.l4, L4_RAW)
    summed = np.flatnonzero((kind == L4_TCP) | (kind == L4_UDP) | (kind == L4_ICMP))
    total = _sum16(l4) + body_sum
    pseudo = np.zeros(n, np.uint64)
    p4 = summed[~v6[summed] & (kind[summed] != L4_ICMP)]
    pseudo[p4] = (_words(c.src4[p4], 4) + _words(c.dst4[p4], 4) +
                  IPPROTO[kind[p4]].astype(np.uint64) + l4_total[p4].astype(np.uint64))
    p6 = summed[v6[summed]]
    pseudo[p6] = (_sum16(c.src6[p6]) + _sum16(c.dst6[p6]) +
                  _words(l4_total[p6], 4) + NEXTHDR[kind[p6]].astype(np.uint64))
    ck = _fold(total[summed] + pseudo[summed])
    udp_rows = kind[summed] == L4_UDP
    ck = np.where(udp_rows & (ck == 0), np.uint64(0xFFFF), ck)  # UDP: 0 means "none"
    at = np.where(kind[summed] == L4_TCP, 16, np.where(udp_rows, 6, 2))
    _put(l4, summed, at, ck, 2)

    # One buffer: [L2 | L3 | L4 | body | pad] per packet.
    big = np.concatenate([l2, l3, l4, body], axis=1)
    mask = np.empty(big.shape, dtype=bool)
    at = 0
    for m, ln in ((l2, l2_len), (l3, l3_len), (l4, l4_len), (body, body_len)):
        w = m.shape[1]
        dt = np.int16 if w < 1 << 15 else np.int64  # int16 compares are the cheap ones
        np.less(np.arange(w, dtype=dt)[None, :], np.minimum(ln, w).astype(dt)[:, None],
                out=mask[:, at:at + w])
        at += w
    content = big[mask]
    clen = l2_len + l3_len + l4_len + body_len
    start = np.zeros(n, np.int64)
    if n:
        np.cumsum(clen[:-1], out=start[1:])
    pad = c.pad.astype(np.int64)
    return PacketArray(content, start, clen, pad if pad.any() else None)
