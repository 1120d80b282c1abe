"""Closed-form results the simulator must reproduce (the tests compare against these).

Rates are per second, times in seconds unless a name says ``_ns``; sizes are Ethernet frames
with FCS, as everywhere in ``sim``.
"""

from __future__ import annotations

import math

from sim.model import FCS_BYTES, MIN_FRAME_BYTES, WIRE_OVERHEAD_BYTES


def line_rate_pps(size: int, gbps: float) -> float:
    """Frames per second at line rate: gbps / ((max(size, 64) + 20) * 8).
    64 B at 100 Gb/s: 148.81 Mpps; 1518 B: 8.13 Mpps."""
    return gbps * 1e9 / ((max(size, MIN_FRAME_BYTES) + WIRE_OVERHEAD_BYTES) * 8)


def md1_mean_wait(rho: float, mu: float) -> float:
    """M/D/1 mean time in queue (excluding service): W = rho / (2 mu (1 - rho)),
    with ``mu`` the service rate (1 / service time) and ``rho = lambda / mu`` < 1
    (Pollaczek-Khinchine with zero service variance)."""
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1), got {rho}")
    return rho / (2 * mu * (1 - rho))


def pipeline_pps(clock_mhz: float, ii_cycles: int = 1, passes: int = 1) -> float:
    """Packets per second a pipeline issues: clock / (II x passes)."""
    return clock_mhz * 1e6 / (ii_cycles * passes)


def bus_cycles(size: int, bus_bits: int) -> int:
    """Bus beats of a frame without its FCS: ceil((size - 4) * 8 / bus_bits)."""
    return math.ceil(max(size - FCS_BYTES, 1) * 8 / bus_bits)


def bus_bound_pps(size: int, bus_bits: int, clock_mhz: float) -> float:
    """Packets per second a bus of ``bus_bits`` at ``clock_mhz`` carries."""
    return clock_mhz * 1e6 / bus_cycles(size, bus_bits)


def pcie_bytes(length: int, tlp_overhead_bytes: int, max_payload_bytes: int) -> int:
    """Bytes on the PCIe link for one DMA: len + ceil(len / max_payload) * overhead."""
    return length + math.ceil(length / max_payload_bytes) * tlp_overhead_bytes


def pcie_pps(size: int, gbps: float, tlp_overhead_bytes: int, max_payload_bytes: int) -> float:
    """Frames per second a PCIe link of ``gbps`` carries (the FCS is not transferred)."""
    wire = pcie_bytes(max(size - FCS_BYTES, 1), tlp_overhead_bytes, max_payload_bytes)
    return gbps * 1e9 / (wire * 8)


def servers_pps(servers: int, service_ns: float) -> float:
    """Packets per second of ``servers`` parallel servers of ``service_ns`` each."""
    return servers * 1e9 / service_ns
