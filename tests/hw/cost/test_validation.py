"""hw.cost.validation: application programs the models were not fitted to, against
published results (the host ones time the program with BPF_PROG_TEST_RUN)."""

from __future__ import annotations

import pytest

from ebpf.errors import KernelError
from hw.cost import hxdp_bench as hb
from hw.cost.validation import host_points, hxdp_points
from hw.targets import load_target
from tests.conftest import corpus_object

CORPUS = corpus_object("xdp_tx").parent
DONE_WHEN = 0.10
"""Issue 12's tolerance for xdp_tx on the XDP paper's testbed."""


def test_xdp_tx_on_the_host_testbeds():
    """xdp_tx.o (MAC swap measured here, carried to the profile's core) is within 10 % of
    the XDP paper's XDP_TX curve on 1-6 cores and of the hXDP paper's x86 XDP_TX."""
    try:
        points = host_points(CORPUS, runs=400)
    except KernelError as exc:  # pragma: no cover - bpf(2) is permitted where tests run
        pytest.skip(f"bpf(2) not permitted: {exc}")
    assert [p.target for p in points] == ["host"] * 6 + ["host-hxdp"]
    for p in points:
        assert abs(p.error) <= DONE_WHEN, (p.what, p.published, p.model)


def test_hxdp_application_points_are_reported_not_fitted():
    """On hxdp, xdp_tx.o (which swaps) costs more than the paper's one-row XDP_TX image and
    so falls below its published 22.5 Mpps; neither point is held to a tolerance."""
    points = hxdp_points(CORPUS)
    assert [p.published for p in points] == [22.5, 6.53]
    assert not any(p.calibrated for p in points)
    swap = points[0].model
    image = hb.run(load_target("hxdp"), hb.tx()).mpps
    assert swap < image and points[0].error < 0
