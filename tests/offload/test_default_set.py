"""`make sim`: every program on pipe and host, each program mapped once per target."""

from __future__ import annotations

import shutil

from offload.default_set import TARGETS, TRAFFIC, default_set, render
from sim.scenario import RunCache
from tests.conftest import corpus_object


def test_each_program_mapped_once(tmp_path, capsys):
    """Two programs x {pipe, host} x two traffic specs: two mappings, eight rows, and the
    pipe rows name the mapping as their NIC cost."""
    (tmp_path / "examples" / "xdp").mkdir(parents=True)
    (tmp_path / "build" / "xdp").mkdir(parents=True)
    for name in ("xdp_tx", "icmp_echo"):
        (tmp_path / "examples" / "xdp" / f"{name}.c").write_text("")
        shutil.copy(corpus_object(name), tmp_path / "build" / "xdp" / f"{name}.o")
    cache = RunCache()
    rows = default_set(tmp_path, packets=500, progress=False, cache=cache)
    assert len(rows) == 2 * len(TARGETS) * len(TRAFFIC)
    assert cache.mappings.mapped == 2
    for r in rows:
        if r["target"] == "pipe":
            assert r["nic_cost"]["source"].startswith("mapper: ")
        else:
            assert r["nic_cost"] is None
    render(rows)
    out = capsys.readouterr().out
    icmp = next(r["nic_cost"] for r in rows if r["program"] == "xdp_icmp_echo" and r["nic_cost"])
    assert "NIC cost (mapping)" in out
    assert f"full, {icmp['stages']} st, {icmp['passes']} pass, 0 % punted" in out
