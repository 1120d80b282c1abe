"""TargetParams' defaults come from hw/targets/pipe.toml, its one source (hw.pipeline.profile)."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from ebpf.vm import xdp
from hw.errors import TargetError
from hw.pipeline import TargetParams, target_params
from hw.pipeline.profile import PIPE_DEFAULTS
from hw.targets import BUILTIN_DIR, load_target, load_target_file

PIPE_TOML = BUILTIN_DIR / "pipe.toml"


def test_defaults_are_pipe_toml_read_independently():
    """Every TargetParams default equals pipe.toml's key as tomllib reads it (or the kernel frame)."""
    doc = tomllib.loads(PIPE_TOML.read_text())
    st, pk, dp = doc["stages"], doc["packet"], doc["datapath"]
    expected = {
        "name": doc["name"], "clock_mhz": doc["clock_mhz"], "bus_bits": pk["bus_bits"],
        "window_bytes": pk["window_bytes"], "variable_offset": pk["variable_offset_access"],
        "num_containers": sum(g["count"] for g in doc["phv"]["containers"]),
        "predicate_bits": doc["phv"]["predicate_bits"], "num_stages": st["count"],
        "stage_cycles": st["latency_cycles"],
        "recirc_cycles": doc["recirculation"]["penalty_cycles"],
        "max_passes": doc["recirculation"]["max_passes"], "gateways": st["gateways"],
        "tables": st["tables"], "stateful_alus": st["stateful_alus"],
        "key_bits": st["max_key_bits"], "mul_max_bits": doc["ebpf"]["mul_max_bits"],
        "div": doc["ebpf"]["div"],
        **{f"{k}_units": v for k, v in st["externs"].items()},
        **{f"{m}_{k}": v for m in ("sram", "tcam") for k, v in st[m].items()},
        **dp,
        "frame_headroom": 256 - 40, "frame_end": 4096 - 256 - 320, "min_packet_bytes": 14,
    }
    assert dataclasses.asdict(TargetParams()) == expected
    assert dict(PIPE_DEFAULTS) == expected
    assert target_params(load_target("pipe")) == TargetParams()


def test_frame_geometry_is_the_kernel_frame():
    """frame_end is the linear part of test_run's frame that ebpf.xdp models."""
    t = TargetParams()
    assert t.frame_end == xdp.TEST_RUN_FRAME_SIZE - xdp.XDP_PACKET_HEADROOM \
        - xdp.SKB_SHARED_INFO_SIZE
    assert t.frame_headroom == xdp.XDP_PACKET_HEADROOM - xdp.XDP_FRAME_SIZE


def test_profile_without_datapath_gets_pipe_values():
    """rmt.toml has no [datapath]: its parser cycles, slices and ports are pipe's."""
    rmt = target_params(load_target("rmt"))
    for name in ("parser_cycles", "deparser_cycles", "window_headroom", "key_slices",
                 "action_containers", "window_loads", "window_stores", "punt_containers"):
        assert getattr(rmt, name) == PIPE_DEFAULTS[name]
    assert rmt.num_stages == 32 and rmt.name == "rmt"


def _variant(tmp_path, old: str, new: str):
    text = PIPE_TOML.read_text()
    assert old in text
    path = tmp_path / "pipe2.toml"
    path.write_text(text.replace('name = "pipe"', 'name = "pipe2"').replace(old, new, 1))
    return path


def test_partial_datapath_overrides_one_key(tmp_path):
    """A profile giving only parser_cycles changes that key and keeps pipe's others."""
    start = PIPE_TOML.read_text().index("[datapath]")
    end = PIPE_TOML.read_text().index("[ebpf]")
    block = PIPE_TOML.read_text()[start:end]
    path = _variant(tmp_path, block, "[datapath]\nparser_cycles = 9   # test\n\n")
    t = target_params(load_target_file(path))
    assert t.parser_cycles == 9 and t.name == "pipe2"
    assert dataclasses.replace(t, parser_cycles=5, name="pipe") == TargetParams()


@pytest.mark.parametrize("old, new, pattern", [
    ("punt_containers = 8", "punt_containers = -1",
     r"pipe2\.toml: datapath\.punt_containers: expected an integer >= 0, got -1$"),
    ("punt_containers = 8", "punt_slots = 8",
     r"pipe2\.toml: datapath\.punt_slots: unknown key"),
])
def test_bad_datapath_key_is_one_line_error(tmp_path, old, new, pattern):
    """A bad [datapath] key fails with the file, the key and the problem."""
    with pytest.raises(TargetError, match=pattern):
        load_target_file(_variant(tmp_path, old, new))
