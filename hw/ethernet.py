"""Ethernet framing on the wire: the one source of the frame and overhead sizes and of the
packet rate a link carries, for the cost models (``hw.rtc``), the simulator (``sim``), the
co-simulation and the report.

IEEE 802.3 (clause 4.4.2, and clause 35 for the minimum inter-packet gap): 7 B preamble +
1 B start-of-frame delimiter before every frame and 12 B of idle after it, 20 B per frame
beyond the frame itself; frames of 64 B minimum, 4 B FCS included. 64-byte frames at
100 Gb/s: 100e9 / ((64 + 20) * 8) = 148.81 Mpps.
"""

from __future__ import annotations

PREAMBLE_SFD_BYTES = 8
IFG_BYTES = 12
WIRE_OVERHEAD_BYTES = PREAMBLE_SFD_BYTES + IFG_BYTES
MIN_FRAME_BYTES = 64
FCS_BYTES = 4
MAX_FRAME_BYTES = 65535  # the simulator's bound on a frame size (IP's total length field)


def wire_mpps(gbps: float, frame_bytes: int = MIN_FRAME_BYTES) -> float:
    """Frames per second (Mpps) a link of ``gbps`` carries at ``frame_bytes`` per frame, the
    20 B of preamble, delimiter and inter-packet gap included (10 GbE: 14.88 Mpps at 64 B)."""
    return gbps * 1000.0 / ((frame_bytes + WIRE_OVERHEAD_BYTES) * 8)


LINE_RATE_100G_MPPS = wire_mpps(100.0)
"""64-byte frames at 100 Gb/s (148.81 Mpps): what the RTL results and the report compare
their packet rates with."""
