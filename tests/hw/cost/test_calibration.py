"""hw.cost.calibration: every calibrated point within 5 % of its published value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hw.cost.calibration import CALIBRATED, TOLERANCE, all_points, host_points, markdown
from tests.conftest import ROOT, corpus_object


@pytest.mark.parametrize("point", [p for p in host_points() if p.model is not None],
                         ids=lambda p: f"{p.target}: {p.what}")
def test_calibrated_point_within_tolerance(point):
    """The model's value for a published microbenchmark is within 5 % of it."""
    assert point.calibrated
    assert abs(point.error) <= TOLERANCE, (point.what, point.published, point.model)


def test_points_cover_the_published_set():
    """The XDP paper's DROP, TX and REDIRECT curves (6 cores each), its counting PASS, and
    the hXDP paper's three x86 baselines are all there, each with a source."""
    points = host_points()
    assert sum(p.target == "host" and p.model is not None for p in points) == 19
    assert sum(p.target == "host-hxdp" for p in points) == 3
    assert all(p.source for p in points) and set(CALIBRATED) == {p.target for p in points}


def test_hxdp_points_from_the_corpus():
    """With the built corpus the hXDP baseline points appear, each with a model value."""
    corpus = corpus_object("xdp_drop").parent
    hx = [p for p in all_points(corpus) if p.target == "hxdp"]
    assert [p.published for p in hx] == [52.0, 22.5]
    assert all(p.model is not None and p.model > 0 and not p.calibrated for p in hx)


def test_bench_script_prints_the_table():
    """bench/calibration.py prints the Markdown table the code gives and exits 0."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "calibration.py")],
                          capture_output=True, text=True, check=True)
    assert markdown(host_points()).splitlines()[2] in proc.stdout
    assert "0 outside" in proc.stdout
