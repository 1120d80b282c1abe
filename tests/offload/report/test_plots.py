"""offload.report.plots: SVG text, deterministic, with empty-data fallbacks."""

from __future__ import annotations

from offload.report import plots

TARGETS = [{"name": "pipe", "line_rate_gbps": 100.0}, {"name": "host", "line_rate_gbps": 100.0}]


def run(target: str, size: int, mpps: float) -> dict:
    return {"target": target, "size": size, "metrics": {
        "achieved": {"mpps": mpps, "gbps": mpps * (size + 20) * 8 / 1e3},
        "utilisation": {"link": 0.5, "nic": 0.2, "host_mean": 0.7}}}


SIM = {"sizes": [64, 1518], "sweep": [run("pipe", 64, 148.8), run("pipe", 1518, 8.1),
                                      run("host", 64, 40.0), run("host", 1518, 8.1)],
       "latency": [{"target": t, "traffic": "imix@100%",
                    "latency_cdf": [[100.0, 0.5], [200.0, 1.0]],
                    "metrics": {"utilisation": {"link": 0.3}}} for t in ("pipe", "host")]}


def test_throughput_is_svg_and_deterministic():
    """The same data gives the same bytes (fixed hash salt, no date)."""
    a = plots.throughput_svg(SIM, TARGETS)
    assert a.startswith("<svg") and a == plots.throughput_svg(SIM, TARGETS)


def test_latency_and_utilisation():
    """Latency CDF and the simulator's utilisation when there is no stage map."""
    assert plots.latency_cdf_svg(SIM, TARGETS).startswith("<svg")
    svg, shows = plots.utilisation_svg({"feasibility": [], "simulation": SIM}, TARGETS)
    assert svg.startswith("<svg") and shows == "simulator"


def test_utilisation_from_a_stage_map():
    """A stage map's per-stage usage is drawn against capacity."""
    sm = {"available": True, "capacity": {"tables": 4, "gateways": 4}, "stages_used": 2,
          "status": "greedy", "stages": [{"stage": 0, "usage": {"tables": 2, "gateways": 1}},
                                         {"stage": 1, "usage": {"tables": 4, "gateways": 0}}]}
    _, shows = plots.utilisation_svg({"feasibility": [{"target": "pipe", "stage_map": sm}]},
                                     TARGETS)
    assert shows == "stage map"


def test_empty_inputs_still_give_svg():
    """No runs: a figure saying so, not an exception."""
    assert plots.throughput_svg(None, TARGETS).startswith("<svg")
    assert plots.latency_cdf_svg({"latency": []}, TARGETS).startswith("<svg")
    assert plots.overview_svg([], [], [], None).startswith("<svg")
