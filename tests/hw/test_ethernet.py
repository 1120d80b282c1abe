"""Ethernet framing: the one source of frame sizes, wire overhead and line rate."""

from __future__ import annotations

import pytest

import hw.ethernet as eth


def test_line_rates_from_the_standard():
    """64 B at 100 Gb/s is 148.81 Mpps, at 10 Gb/s 14.88 Mpps; 1518 B at 100 Gb/s 8.13 Mpps
    (IEEE 802.3: 20 B of preamble, delimiter and gap per frame)."""
    assert eth.WIRE_OVERHEAD_BYTES == 20
    assert eth.LINE_RATE_100G_MPPS == pytest.approx(148.8095, abs=1e-4)
    assert eth.wire_mpps(10.0) == pytest.approx(14.88095, abs=1e-5)
    assert eth.wire_mpps(100.0, 1518) == pytest.approx(8.1274, abs=1e-4)


def test_every_user_takes_the_same_constants():
    """The simulator, the cost models, the co-simulation and the report use these objects,
    not copies."""
    import hw.rtc
    import offload.cosim
    import sim.model

    assert sim.model.WIRE_OVERHEAD_BYTES is eth.WIRE_OVERHEAD_BYTES
    assert sim.model.MIN_FRAME_BYTES is eth.MIN_FRAME_BYTES
    assert hw.rtc.wire_mpps is eth.wire_mpps
    assert offload.cosim.LINE_RATE_MPPS is eth.LINE_RATE_100G_MPPS
