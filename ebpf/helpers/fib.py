"""fib_lookup against the routes of ``HelperEnv``."""


from __future__ import annotations

import errno
import ipaddress
import struct
from typing import TYPE_CHECKING

from ebpf.helpers.core import (
    AF_INET,
    AF_INET6,
    BPF_FIB_LKUP_RET_BLACKHOLE,
    BPF_FIB_LKUP_RET_FRAG_NEEDED,
    BPF_FIB_LKUP_RET_FWD_DISABLED,
    BPF_FIB_LKUP_RET_NO_NEIGH,
    BPF_FIB_LKUP_RET_NO_SRC_ADDR,
    BPF_FIB_LKUP_RET_NOT_FWDED,
    BPF_FIB_LKUP_RET_PROHIBIT,
    BPF_FIB_LKUP_RET_SUCCESS,
    BPF_FIB_LKUP_RET_UNREACHABLE,
    BPF_FIB_LOOKUP_FLAGS,
    BPF_FIB_LOOKUP_SKIP_NEIGH,
    BPF_FIB_LOOKUP_SRC,
    FIB_LOOKUP_SIZE,
    Route,
    helper,
)
from ebpf.vm.limits import M32

if TYPE_CHECKING:
    from ebpf.vm.machine import Vm


# --------------------------------------------------------------------------------------------
# fib_lookup
# --------------------------------------------------------------------------------------------

ROUTE_CODES = {"blackhole": BPF_FIB_LKUP_RET_BLACKHOLE,
               "unreachable": BPF_FIB_LKUP_RET_UNREACHABLE,
               "prohibit": BPF_FIB_LKUP_RET_PROHIBIT}
"""Route kinds that do not forward -> their return codes (other kinds: NOT_FWDED)."""

@helper("fib_lookup", 4)
def fib_lookup(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int:
    """bpf_xdp_fib_lookup against ``HelperEnv.routes`` (net/core/filter.c).

    plen < 64 or unknown flags -> -EINVAL; a family other than AF_INET/AF_INET6 ->
    -EAFNOSUPPORT. ``forwarding`` False -> FWD_DISABLED. The longest matching prefix wins
    (one table: DIRECT/OUTPUT/TBID/MARK are accepted and ignored; the input ifindex is not
    checked). No route -> NOT_FWDED; blackhole/unreachable/prohibit routes -> their codes.
    Then, as the kernel does for XDP (check_mtu): tot_len > mtu -> mtu_result = mtu,
    FRAG_NEEDED. Then rt_metric and ifindex are written, the gateway (if any) replaces the
    destination address; with BPF_FIB_LOOKUP_SRC the route's ``src`` is written (none ->
    NO_SRC_ADDR). Without SKIP_NEIGH, no ``dmac`` -> NO_NEIGH; else smac/dmac are written.
    On success h_vlan_proto = h_vlan_TCI = 0 and mtu_result = mtu.
    """
    if r3 < FIB_LOOKUP_SIZE or r4 & ~BPF_FIB_LOOKUP_FLAGS:
        return -errno.EINVAL
    params = bytearray(vm.mem.read(r2, FIB_LOOKUP_SIZE))
    family = params[0]
    if family == AF_INET:
        dst = ipaddress.IPv4Address(bytes(params[32:36]))
    elif family == AF_INET6:
        dst = ipaddress.IPv6Address(bytes(params[32:48]))
        src = ipaddress.IPv6Address(bytes(params[16:32]))
        # bpf_ipv6_fib_lookup: rt6_need_strict() on either address (multicast, link-local,
        # loopback) -> NOT_FWDED, before anything else is looked at.
        if any(a.is_multicast or a.is_link_local or a.is_loopback for a in (src, dst)):
            return BPF_FIB_LKUP_RET_NOT_FWDED
    else:
        return -errno.EAFNOSUPPORT
    if not vm.env.forwarding:
        return BPF_FIB_LKUP_RET_FWD_DISABLED
    best: Route | None = None
    for route in vm.env.get_routes():
        net = route.network
        if net.version == dst.version and dst in net:
            if best is None or net.prefixlen > best.network.prefixlen:
                best = route
    if best is None or best.kind == "throw":
        return BPF_FIB_LKUP_RET_NOT_FWDED
    if best.kind != "unicast":
        return ROUTE_CODES.get(best.kind, BPF_FIB_LKUP_RET_NOT_FWDED)
    tot_len = struct.unpack_from("<H", params, 6)[0]
    if tot_len > best.mtu:
        struct.pack_into("<H", params, 6, best.mtu & 0xFFFF)
        vm.mem.write(r2, bytes(params))
        return BPF_FIB_LKUP_RET_FRAG_NEEDED
    struct.pack_into("<I", params, 12, best.metric & M32)
    struct.pack_into("<I", params, 8, best.ifindex & M32)
    ret = BPF_FIB_LKUP_RET_SUCCESS
    if r4 & BPF_FIB_LOOKUP_SRC:
        if best.src is None:
            ret = BPF_FIB_LKUP_RET_NO_SRC_ADDR
        else:
            src = ipaddress.ip_address(best.src).packed
            params[16:16 + len(src)] = src
    if ret == BPF_FIB_LKUP_RET_SUCCESS and best.gateway is not None:
        gw = ipaddress.ip_address(best.gateway).packed
        params[32:32 + len(gw)] = gw
    if ret == BPF_FIB_LKUP_RET_SUCCESS and not r4 & BPF_FIB_LOOKUP_SKIP_NEIGH:
        if best.dmac is None:
            ret = BPF_FIB_LKUP_RET_NO_NEIGH
        else:
            params[52:58] = bytes(best.smac)[:6].ljust(6, b"\0")
            params[58:64] = bytes(best.dmac)[:6].ljust(6, b"\0")
    if ret == BPF_FIB_LKUP_RET_SUCCESS:
        params[48:52] = bytes(4)  # h_vlan_proto, h_vlan_TCI
        if best.mtu:
            struct.pack_into("<H", params, 6, best.mtu & 0xFFFF)
    vm.mem.write(r2, bytes(params))
    return ret
