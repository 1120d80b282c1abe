"""Target profiles: the built-in figures, their sources, and one-line errors for bad profiles."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hw import HwError, TargetError
from hw.targets import (
    BUILTIN_DIR,
    DEFAULT_TARGET,
    CpuTarget,
    NpuTarget,
    PipelineTarget,
    VliwTarget,
    list_targets,
    load_target,
    load_target_file,
)
from offload import targets_cmd
from tests.conftest import ROOT

BUILTIN = ("pipe", "rmt", "nfp", "hxdp", "dpu", "host", "host-hxdp")


def builtin_text(name: str) -> str:
    return (BUILTIN_DIR / f"{name}.toml").read_text()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


# --- built-in profiles -------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_profile_loads(name):
    """Every built-in profile loads by name and says where it came from."""
    target = load_target(name)
    assert target.name == name
    assert target.source.endswith(f"{name}.toml")
    json.dumps(target.to_dict())


def test_builtin_set_and_default():
    """list_targets gives the seven built-ins, NIC styles first, the hosts last; pipe is default."""
    names = [t.name for t in list_targets()]
    assert names == list(BUILTIN)
    assert DEFAULT_TARGET == "pipe"
    assert load_target().name == "pipe"


def test_pipe_figures():
    """pipe: 64-bit PHV, 250 MHz, 512-bit bus, 256-byte window with variable offsets."""
    t = load_target("pipe")
    assert isinstance(t, PipelineTarget)
    assert {g.bits for g in t.phv.containers} == {64}
    assert t.clock_mhz == 250 and t.line_rate_gbps == 100
    assert t.packet.bus_bits == 512 and t.packet.window_bytes == 256
    assert t.packet.variable_offset_access
    assert t.alu_slots_per_stage == t.phv.num_containers
    assert t.recirculation.allowed and t.recirculation.penalty_cycles
    assert t.pipeline_latency_cycles == t.stages.count * t.stages.latency_cycles
    assert t.pcie is not None and t.pcie.bandwidth_gbps <= t.pcie.raw_gbps


def test_rmt_figures():
    """rmt: 1 GHz, 32 stages, 106 x 1K x 112 b SRAM, 16 x 2K x 40 b TCAM, 64x8+96x16+64x32 PHV."""
    t = load_target("rmt")
    assert isinstance(t, PipelineTarget)
    assert t.clock_mhz == 1000
    assert t.stages.count == 32
    sram, tcam = t.stages.sram, t.stages.tcam
    assert (sram.blocks, sram.entries, sram.width_bits) == (106, 1024, 112)
    assert (tcam.blocks, tcam.entries, tcam.width_bits) == (16, 2048, 40)
    assert [(g.count, g.bits) for g in t.phv.containers] == [(64, 8), (96, 16), (64, 32)]
    assert t.phv.total_bits == 4096
    assert not t.packet.variable_offset_access
    assert t.packet.parse_depth_bytes
    assert t.alu.width_bits == 32
    assert t.ebpf is not None and t.ebpf.mul_max_bits == 0 and t.ebpf.div == "none"


def test_nfp_driver_restrictions():
    """nfp: the nfp driver's helpers, ARRAY/HASH maps, no redirect, atomic add only."""
    t = load_target("nfp")
    assert isinstance(t, NpuTarget)
    assert t.clock_mhz == 800 and t.cores.threads_per_core == 8
    assert t.cores.usable <= t.cores.count
    assert t.ebpf is not None
    assert set(t.ebpf.helpers) == {"map_lookup_elem", "map_update_elem", "map_delete_elem",
                                   "get_prandom_u32", "perf_event_output", "xdp_adjust_head",
                                   "xdp_adjust_tail"}
    assert t.ebpf.has_helper("bpf_map_lookup_elem") and not t.ebpf.has_helper("redirect_map")
    assert set(t.ebpf.map_types) == {"array", "hash"}
    assert "redirect" not in t.ebpf.verdicts
    assert t.ebpf.atomics == ("add",)
    assert t.ebpf.mul_max_bits == 32 and t.ebpf.div == "constant"
    assert not t.ebpf.variable_stack_access and not t.ebpf.map_value_stores


def test_hxdp_figures():
    """hxdp: 4 lanes at 156.25 MHz, one helper call per row."""
    t = load_target("hxdp")
    assert isinstance(t, VliwTarget)
    assert t.vliw.lanes == 4 and t.clock_mhz == 156.25
    assert t.vliw.helper_calls_per_row == 1
    assert t.ebpf is not None and t.ebpf.stack_bytes == 512
    # calibrated on the paper's microbenchmarks (docs/calibration.md)
    assert (t.timing.start_latency_cycles, t.timing.tx_cycles) == (2, 7)
    assert t.timing.redirect_cycles == 10 and t.timing.emit_cycles(redirect=True) == 10
    assert (t.timing.helper_cycles, t.timing.map_access_cycles) == (0, 0)


def test_vliw_tx_cycles_optional(tmp_path):
    """A vliw profile without tx_cycles has no transmit bound (0)."""
    lines = [ln for ln in builtin_text("hxdp").splitlines() if not ln.startswith("tx_cycles")]
    t = load_target_file(write(tmp_path, "hxdp", "\n".join(lines)))
    assert isinstance(t, VliwTarget) and t.timing.tx_cycles == 0


def test_vliw_redirect_cycles_default_to_tx_cycles(tmp_path):
    """Without redirect_cycles a redirected packet's emission costs tx_cycles."""
    lines = [ln for ln in builtin_text("hxdp").splitlines()
             if not ln.startswith("redirect_cycles")]
    t = load_target_file(write(tmp_path, "hxdp", "\n".join(lines)))
    assert isinstance(t, VliwTarget) and t.timing.redirect_cycles is None
    assert t.timing.emit_cycles(redirect=True) == t.timing.emit_cycles(redirect=False) == 7


def test_dpu_figures():
    """dpu: 8 Arm cores on the NIC, slower than the host core, behind PCIe 4.0 x16."""
    t = load_target("dpu")
    assert isinstance(t, CpuTarget)
    assert t.location == "nic" and t.cores.count == 8
    assert 0 < t.cpu.relative_speed < 1 and t.cpu.driver_overhead_ns > 0
    assert t.pcie is not None and (t.pcie.gen, t.pcie.lanes) == (4, 16)


def test_host_driver_overhead():
    """host: 23.86 Mpps XDP_DROP on one core (XDP paper Fig. 3) gives 41.91 ns per packet; the
    per-verdict table prices TX, REDIRECT and PASS above DROP, and has a shared ceiling."""
    t = load_target("host")
    assert isinstance(t, CpuTarget)
    assert t.location == "host" and t.pcie is None and t.ebpf is None
    assert t.get_reference("xdp_drop_mpps") == 23.86
    assert t.cpu.driver_overhead_ns == pytest.approx(1000 / 23.86, abs=0.01)
    assert t.cpu.relative_speed == 1.0 and t.cores.count >= 1
    v = dict(t.cpu.verdict_ns)
    assert v["drop"] < v["tx"] < v["redirect"] < v["pass"]
    assert set(dict(t.cpu.bus_ns)) == set(v) and t.cpu.contention_ns > 0


def test_bus_without_contention_is_refused(tmp_path):
    """A [cpu.bus_ns] table without contention_ns is one line naming the key."""
    text = builtin_text("host").replace("contention_ns = 0.205", "")
    (tmp_path / "host.toml").write_text(text)
    with pytest.raises(TargetError, match=r"host.toml: cpu.contention_ns: missing"):
        load_target_file(tmp_path / "host.toml")


NUMBER_LINE = re.compile(r"^\s*[A-Za-z0-9_-]+\s*=\s*[-+]?\.?\d")


@pytest.mark.parametrize("name", BUILTIN)
def test_every_number_has_a_source_comment(name):
    """Each `key = <number>` line has a # comment on it or on the line above."""
    lines = builtin_text(name).splitlines()
    missing = [f"{name}.toml:{i + 1}: {line.strip()}"
               for i, line in enumerate(lines)
               if NUMBER_LINE.match(line) and "#" not in line
               and not (i > 0 and lines[i - 1].lstrip().startswith("#"))]
    assert not missing, "numbers without a source:\n" + "\n".join(missing)


# --- malformed profiles ------------------------------------------------------------------

BASE = """\
name = "bad"
kind = "pipeline"
location = "nic"
description = "a test pipeline"
clock_mhz = 250
line_rate_gbps = 100

[pcie]
gen = 3
lanes = 16
bandwidth_gbps = 126.0
tlp_overhead_bytes = 24
max_payload_bytes = 256

[phv]
predicate_bits = 64

[[phv.containers]]
bits = 64
count = 32

[packet]
window_bytes = 256
parse_depth_bytes = 256
bus_bits = 512
variable_offset_access = true

[stages]
count = 12
latency_cycles = 4
tables = 4
gateways = 8
stateful_alus = 2
max_key_bits = 512

[stages.sram]
blocks = 16
entries = 1024
width_bits = 128

[stages.tcam]
blocks = 2
entries = 512
width_bits = 160

[stages.externs]
checksum = 1
hash = 1
random = 1
timestamp = 1

[alu]
width_bits = 64

[recirculation]
allowed = true
penalty_cycles = 8
max_passes = 4

[ebpf]
helpers = ["map_lookup_elem", "xdp_adjust_head"]
map_types = ["array", "hash"]
verdicts = ["drop", "pass", "tx"]
atomics = ["add"]
stack_bytes = 512
mul_max_bits = 32
div = "none"
variable_stack_access = false
map_value_stores = true
"""

# (id, text to replace in BASE, replacement, pattern the one-line error must match)
MALFORMED = [
    ("toml-syntax", "count = 12", "count = = 12",
     r"^.*bad\.toml: TOML syntax error: .*line 29"),
    ("missing-key", "latency_cycles = 4\n", "",
     r"bad\.toml: stages\.latency_cycles: missing \(expected a positive integer\)$"),
    ("missing-section", "[alu]\nwidth_bits = 64\n", "",
     r"bad\.toml: alu: missing \(expected a table\)$"),
    ("wrong-type", "clock_mhz = 250", 'clock_mhz = "fast"',
     r"bad\.toml: clock_mhz: expected a positive number, got 'fast'$"),
    ("negative", "count = 12", "count = -3",
     r"bad\.toml: stages\.count: expected a positive integer, got -3$"),
    ("zero", "tables = 4", "tables = 0",
     r"bad\.toml: stages\.tables: expected a positive integer, got 0$"),
    ("float-for-int", "window_bytes = 256", "window_bytes = 256.5",
     r"bad\.toml: packet\.window_bytes: expected a positive integer, got 256\.5$"),
    ("bool-for-int", "gateways = 8", "gateways = true",
     r"bad\.toml: stages\.gateways: expected an integer >= 0, got true$"),
    ("unknown-kind", 'kind = "pipeline"', 'kind = "gpu"',
     r"bad\.toml: kind: unknown kind 'gpu' \(expected one of pipeline, npu, vliw, cpu\)$"),
    ("typo-in-section", "count = 12", "cuont = 12",
     r"bad\.toml: stages\.cuont: unknown key \(did you mean 'count'\?\)$"),
    ("typo-top-level", "line_rate_gbps = 100", "line_rate_gpbs = 100",
     r"bad\.toml: line_rate_gpbs: unknown key \(did you mean 'line_rate_gbps'\?\)$"),
    ("other-kind-section", "[alu]", "[cores]\ncount = 4\n\n[alu]",
     r"bad\.toml: cores: a pipeline target has no \[cores\] section"),
    ("phv-too-small", "count = 32", "count = 4",
     r"bad\.toml: phv\.containers: 4 x 64 b = 256 bits, fewer than the 768 bits"),
    ("phv-width", "\nbits = 64", "\nbits = 48",
     r"bad\.toml: phv\.containers\[0\]\.bits: expected one of 8, 16, 32, 64, got 48$"),
    ("parse-beyond-window", "parse_depth_bytes = 256", "parse_depth_bytes = 512",
     r"bad\.toml: packet\.parse_depth_bytes: 512 is larger than window_bytes 256"),
    ("window-not-beats", "window_bytes = 256", "window_bytes = 300",
     r"bad\.toml: packet\.window_bytes: 300 is not a whole number of 64-byte bus beats"),
    ("bus-below-line-rate", "bus_bits = 512", "bus_bits = 256",
     r"bad\.toml: packet\.bus_bits: 256 bits at 250 MHz carry 64 Gb/s, below "
     r"line_rate_gbps 100$"),
    ("alu-wider-than-phv", "[alu]\nwidth_bits = 64", "[alu]\nwidth_bits = 128",
     r"bad\.toml: alu\.width_bits: 128 is wider than the widest PHV container \(64 b\)$"),
    ("pcie-too-fast", "bandwidth_gbps = 126.0", "bandwidth_gbps = 500.0",
     r"bad\.toml: pcie\.bandwidth_gbps: 500 Gb/s exceeds what PCIe 3\.0 x16 carries "
     r"\(126\.0 Gb/s after encoding\)$"),
    ("pcie-lanes", "lanes = 16", "lanes = 3",
     r"bad\.toml: pcie\.lanes: expected one of 1, 2, 4, 8, 16, 32, got 3$"),
    ("unknown-helper", '"map_lookup_elem"', '"map_lookup"',
     r"bad\.toml: ebpf\.helpers: unknown helper 'map_lookup' \(did you mean "
     r"'map_lookup_elem'\?\)$"),
    ("helper-not-string", '"map_lookup_elem"', "7",
     r"bad\.toml: ebpf\.helpers\[0\]: expected a string, got 7$"),
    ("unknown-map-type", '"hash"]', '"hashmap"]',
     r"bad\.toml: ebpf\.map_types: unknown map type 'hashmap'"),
    ("stack-over-limit", "stack_bytes = 512", "stack_bytes = 1024",
     r"bad\.toml: ebpf\.stack_bytes: 1024 exceeds the eBPF stack limit of 512 bytes"),
    ("bad-div", 'div = "none"', 'div = "some"',
     r"bad\.toml: ebpf\.div: unknown value 'some' \(expected one of none, constant, full\)"),
    ("name-not-file", 'name = "bad"', 'name = "other"',
     r"bad\.toml: name: 'other' does not match the file name 'bad'$"),
    ("host-pipeline", 'location = "nic"', 'location = "host"',
     r"bad\.toml: location: only a cpu target can be the host, this is a pipeline$"),
    ("recirculation-off", "allowed = true", "allowed = false",
     r"bad\.toml: recirculation\.penalty_cycles: only meaningful when "
     r"recirculation\.allowed = true$"),
    ("not-a-table", "line_rate_gbps = 100\n\n[pcie]\ngen = 3\nlanes = 16\n"
     "bandwidth_gbps = 126.0\ntlp_overhead_bytes = 24\nmax_payload_bytes = 256\n",
     "line_rate_gbps = 100\npcie = 3\n",
     r"bad\.toml: pcie: expected a table, got 3$"),
    ("not-an-array-of-tables", "predicate_bits = 64\n\n[[phv.containers]]\nbits = 64\n"
     "count = 32\n", "predicate_bits = 64\ncontainers = 5\n",
     r"bad\.toml: phv\.containers: expected a non-empty array of tables, got 5$"),
]


def test_base_profile_is_valid(tmp_path):
    """The template the malformed cases start from loads cleanly."""
    assert load_target_file(write(tmp_path, "bad", BASE)).name == "bad"


@pytest.mark.parametrize("old, new, pattern", [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed_profile_is_one_line_error(tmp_path, old, new, pattern):
    """A malformed or inconsistent profile raises one TargetError naming file, key, problem."""
    assert old in BASE
    path = write(tmp_path, "bad", BASE.replace(old, new, 1))
    with pytest.raises(TargetError, match=pattern) as info:
        load_target_file(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, old, new, pattern", [
    ("host", "relative_speed = 1.0", "relative_speed = 0.5",
     r"host\.toml: cpu\.relative_speed: the host core is the reference: expected 1\.0, "
     r"got 0\.5$"),
    ("host", "driver_overhead_ns = 41.91", "driver_overhead_ns = 50.0",
     r"host\.toml: cpu\.driver_overhead_ns: 50 ns disagrees with reference\.xdp_drop_mpps 23.86"),
    ("host", 'jit = "kernel"', 'jit = "ubpf"',
     r"host\.toml: cpu\.jit: unknown value 'ubpf' \(expected one of kernel\)"),
    ("host", "[cores]", "[pcie]\ngen = 3\n\n[cores]",
     r"host\.toml: pcie: only NIC targets have a PCIe link"),
    ("nfp", "usable = 48", "usable = 64",
     r"nfp\.toml: cores\.usable: 64 is more than cores\.count 60$"),
    ("nfp", "[pcie]\n", "",
     r"nfp\.toml: gen: unknown key"),
    ("hxdp", "helper_calls_per_row = 1", "helper_calls_per_row = 5",
     r"hxdp\.toml: vliw\.helper_calls_per_row: 5 is more than the 4 lanes of a row$"),
    ("hxdp", "tx_cycles = 7", "tx_cycles = -1",
     r"hxdp\.toml: timing\.tx_cycles: expected an integer >= 0, got -1$"),
    ("hxdp", "redirect_cycles = 10", "redirect_cycles = -3",
     r"hxdp\.toml: timing\.redirect_cycles: expected an integer >= 0, got -3$"),
    ("hxdp", "xdp_drop_mpps = 52", "xdp_drop_mpps = -52",
     r"hxdp\.toml: reference\.xdp_drop_mpps: expected a positive number, got -52$"),
])
def test_inconsistent_builtin_variants(tmp_path, name, old, new, pattern):
    """Edited copies of built-in profiles fail with the key and the inconsistency."""
    text = builtin_text(name)
    assert old in text
    path = write(tmp_path, name, text.replace(old, new, 1))
    with pytest.raises(TargetError, match=pattern):
        load_target_file(path)


def test_missing_kind(tmp_path):
    """A profile without a kind says which kinds exist."""
    path = write(tmp_path, "bad", BASE.replace('kind = "pipeline"\n', ""))
    with pytest.raises(TargetError, match=r"bad\.toml: kind: missing \(expected one of "
                                          r"pipeline, npu, vliw, cpu\)$"):
        load_target_file(path)


def test_unreadable_file_is_target_error():
    """A path that does not exist is a TargetError naming it."""
    with pytest.raises(TargetError, match=r"nowhere/absent\.toml: cannot read: "):
        load_target("nowhere/absent.toml")


def test_target_error_is_the_hw_root_error():
    """TargetError derives from HwError, the hw package's root error."""
    assert issubclass(TargetError, HwError)


# --- user profiles and lookup ------------------------------------------------------------

def test_user_target_file_loads(tmp_path):
    """A user adds a target by adding a file: by path, by name with extra, and in the list."""
    text = builtin_text("pipe").replace('name = "pipe"', 'name = "bigpipe"')
    text = text.replace("count = 12 ", "count = 20 ")
    path = write(tmp_path, "bigpipe", text)
    by_path = load_target(str(path))
    assert isinstance(by_path, PipelineTarget) and by_path.stages.count == 20
    assert load_target("bigpipe", extra=[path]) == by_path
    assert load_target("bigpipe", extra=[tmp_path]) == by_path
    names = [t.name for t in list_targets(extra=[tmp_path])]
    assert "bigpipe" in names and set(BUILTIN) <= set(names)


def test_unknown_target_name_lists_known():
    """An unknown name lists the known targets and suggests the closest."""
    with pytest.raises(TargetError, match=r"^unknown target 'pipee' \(known: dpu, host, "
                                          r"host-hxdp, hxdp, nfp, pipe, rmt\) \(did you mean 'pipe'\?\)$"):
        load_target("pipee")


def test_duplicate_target_name_rejected(tmp_path):
    """An extra profile may not reuse a built-in name."""
    write(tmp_path, "pipe", builtin_text("pipe"))
    with pytest.raises(TargetError, match=r"pipe\.toml: name: target 'pipe' is already "
                                          r"defined by .*hw/targets/pipe\.toml$"):
        list_targets(extra=[tmp_path])


# --- offload targets ---------------------------------------------------------------------

def run_targets(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="offload")
    targets_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_targets_json_has_every_field(capsys):
    """`targets --json` lists every target as a dict of all its fields."""
    assert run_targets(["targets", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in doc}
    assert list(by_name) == list(BUILTIN)
    assert by_name["rmt"]["stages"]["sram"] == {"blocks": 106, "entries": 1024,
                                                 "width_bits": 112}
    assert by_name["host"]["reference"] == {"xdp_drop_mpps": 23.86}
    assert by_name["host"]["cpu"]["verdict_ns"]["tx"] == 57.48
    assert by_name["nfp"]["ebpf"]["map_types"] == ["array", "hash"]
    for d in doc:
        assert {"name", "kind", "location", "clock_mhz", "line_rate_gbps", "pcie", "ebpf",
                "source"} <= set(d)


def test_targets_table_shows_key_figures(capsys):
    """The table has one row per target with clock, compute, window and line rate."""
    assert run_targets(["targets"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert name in out
    assert "156.25 MHz" in out and "32 stages" in out and "variable offsets" in out
    assert "100 Gb/s" in out


def test_targets_with_target_file(tmp_path, capsys):
    """--target-file adds a user profile to the listing."""
    path = write(tmp_path, "mine", builtin_text("hxdp").replace('name = "hxdp"', 'name = "mine"'))
    assert run_targets(["targets", "--json", "--target-file", str(path)]) == 0
    names = [d["name"] for d in json.loads(capsys.readouterr().out)]
    assert "mine" in names


def test_targets_bad_file_raises_target_error(tmp_path):
    """A bad --target-file surfaces as TargetError (the CLI prints it as one line)."""
    path = write(tmp_path, "bad", BASE.replace("count = 12", "count = -3"))
    with pytest.raises(TargetError, match=r"stages\.count: expected a positive integer"):
        run_targets(["targets", "--target-file", str(path)])


def test_summary_rows_cover_every_column():
    """Every target fills every table column."""
    for t in list_targets():
        row = targets_cmd.summary_row(t)
        assert list(row) == list(targets_cmd.COLUMNS)
        assert all(row.values()), (t.name, row)


def offload(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "offload", *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_offload_targets_json_command():
    """`python -m offload targets --json` prints every built-in target as JSON."""
    result = offload("targets", "--json")
    assert result.returncode == 0, result.stderr
    assert [d["name"] for d in json.loads(result.stdout)] == list(BUILTIN)


def test_offload_targets_bad_profile_exit_2(tmp_path):
    """A malformed --target-file is one error line and exit status 2."""
    path = write(tmp_path, "bad", BASE.replace("count = 12", "count = -3"))
    result = offload("targets", "--target-file", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.search(r"^offload: error: .*bad\.toml: stages\.count: expected a positive "
                     r"integer, got -3$", lines[0])
