"""A small report built once per session: three corpus programs, two NIC targets and the host,
short simulations, one RTL result file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from offload.report import ReportOptions, run_report
from tests.conftest import ROOT, corpus_object

SMALL_OBJECTS = ("xdp_drop", "firewall", "bpf2bpf_loop")
RTL_RESULT = {"packets": 500, "mismatches": 0, "cycles_per_packet": 14.5, "ii": 1,
              "mpps": 250.0, "engine": "icarus"}


def small_options(rtl: Path | None = None, **changes: Any) -> ReportOptions:
    """Few packets and sizes: a few seconds per program."""
    base = {"targets": ("pipe", "nfp"), "packets": 300, "sizes": (64, 1518),
            "trace_packets": 16, "host_packets": 2, "host_repeat": 10,
            "maps_dir": str(ROOT / "examples" / "xdp" / "scenarios"),
            "rtl_results": str(rtl) if rtl else None}
    base.update(changes)
    return ReportOptions(**base)


@pytest.fixture(scope="session")
def small_report(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """(report folder, document) of the three small programs."""
    base = tmp_path_factory.mktemp("report")
    rtl = base / "rtl"
    rtl.mkdir()
    (rtl / "xdp_drop_prog.json").write_text(json.dumps(RTL_RESULT))
    out = base / "out"
    objects = [str(corpus_object(n)) for n in SMALL_OBJECTS]
    doc = run_report(objects, str(out), small_options(rtl), jobs=1, show_progress=False)
    return out, doc
