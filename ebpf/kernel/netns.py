"""A throw-away network namespace whose FIB matches a route list, for bpf_fib_lookup.

BPF_PROG_TEST_RUN runs an XDP program on the loopback device of the caller's network
namespace, so `bpf_fib_lookup` consults that namespace's routes and neighbours. To compare
the VM's route model with the kernel, the kernel side runs inside a namespace built from the
same ``Route`` list: one device per egress ifindex (a new namespace numbers lo 1, then
2, 3, ... in creation order; a port-less bridge, since the kernel may lack the dummy
driver) with the route's source MAC, a permanent neighbour entry for the
gateway when the route has a destination MAC, and forwarding enabled. Nothing is attached to
any device; the namespace is deleted on exit.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ebpf.errors import KernelError
from ebpf.helpers.core import Route

CLONE_NEWNET = 0x40000000


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise KernelError(f"netns setup: '{' '.join(cmd)}' failed: {proc.stderr.strip()}")


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise KernelError(f"setns: {os.strerror(err)}")


@contextmanager
def fib_namespace(routes: Sequence[Route], name: str | None = None) -> Iterator[str]:
    """Create the namespace for ``routes``; yields its name; deletes it afterwards."""
    name = name or f"offload-fib-{os.getpid()}"
    ifindexes = sorted({r.ifindex for r in routes if r.ifindex > 1})
    if ifindexes and ifindexes != list(range(2, 2 + len(ifindexes))):
        raise KernelError(f"routes use ifindexes {ifindexes}: a fresh namespace can only "
                          "number devices 2, 3, ... in order")
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    _ip("netns", "add", name)
    try:
        _ip("link", "set", "lo", "up", netns=name)
        smac = {r.ifindex: r.smac for r in routes}
        for ifindex in ifindexes:
            dev = f"fib{ifindex}"
            _ip("link", "add", dev, "type", "bridge", netns=name)
            _ip("link", "set", dev, "address", _mac(smac[ifindex]), netns=name)
            _ip("link", "set", dev, "up", netns=name)
        for route in routes:
            _add_route(name, route)
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            proc = subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", key],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise KernelError(f"netns setup: sysctl {key}: {proc.stderr.strip()}")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _add_route(netns: str, route: Route) -> None:
    net = route.network
    family = "-6" if net.version == 6 else "-4"
    if route.kind != "unicast":
        _ip(family, "route", "add", route.kind, str(net), netns=netns)
        return
    dev = f"fib{route.ifindex}"
    if route.gateway is None:
        raise KernelError(f"route {route.prefix}: the kernel side needs a gateway (a neighbour "
                          "entry cannot be made for every destination)")
    gateway = ipaddress.ip_address(route.gateway)
    # A locked MTU: the kernel's fib lookup uses a route MTU only when it is locked (or
    # ip_forward_use_pmtu is set), else the device's; the VM's Route.mtu is the route's.
    _ip(family, "route", "add", str(net), "via", str(gateway), "dev", dev, "onlink", "mtu",
        "lock", str(route.mtu), netns=netns)
    if route.dmac is not None:
        _ip(family, "neigh", "replace", str(gateway), "lladdr", _mac(route.dmac), "dev", dev,
            "nud", "permanent", netns=netns)


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the calling thread inside ``netns`` for the duration of the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
