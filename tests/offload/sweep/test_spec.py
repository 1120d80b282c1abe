"""offload.sweep.spec: grids expand to points, every bad spec is one line before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload.cli import main
from offload.errors import SweepSpecError
from offload.sweep.spec import load_spec
from tests.conftest import corpus_object


def write_spec(tmp_path: Path, body: str, obj: str | None = None) -> Path:
    obj = obj or str(corpus_object("xdp_drop"))
    spec = tmp_path / "spec.toml"
    spec.write_text(f'programs = [{{object = "{obj}"}}]\n' + body)
    return spec


def test_issue_example_expands_to_24_points(tmp_path):
    """The README's example: pipe 4 x 2 grid x 2 traffic + host 4 x 2 traffic = 24 points."""
    state = Path(corpus_object("firewall")).parents[2] / "examples/xdp/scenarios/firewall.json"
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
programs = [{{object = "{corpus_object('firewall')}", maps = "{state}"}}]
targets = ["pipe", "host"]
traffic = ["64B@100G", "imix@100G"]
[params.pipe]
num_stages = [8, 12, 16, 24]
clock_mhz = [250, 500]
[params.host]
cores = [1, 2, 4, 6]
""")
    s = load_spec(spec)
    assert len(s.points) == 24
    pipe = [p for p in s.points if p.target == "pipe"]
    assert {p.profile["stages"]["count"] for p in pipe} == {8, 12, 16, 24}
    assert {p.profile["clock_mhz"] for p in pipe} == {250, 500}
    host = [p for p in s.points if p.target == "host"]
    assert sorted({p.host_cores for p in host}) == [1, 2, 4, 6]
    assert all(p.program.maps == str(state) for p in s.points)


def test_points_list_and_dotted_keys(tmp_path):
    """`points = [...]` lists combinations; a dotted profile key is a parameter too."""
    spec = write_spec(tmp_path, """
targets = ["pipe"]
traffic = ["64B@10G"]
[params.pipe]
points = [{num_stages = 6, "stages.latency_cycles" = 2}, {num_stages = 10}]
""")
    pts = load_spec(spec).points
    assert [(p.profile["stages"]["count"], p.profile["stages"]["latency_cycles"])
            for p in pts] == [(6, 2), (10, 4)]


@pytest.mark.parametrize(("body", "match"), [
    ('targets = ["nope"]\ntraffic = ["64B@10G"]\n', r"spec.toml: targets: unknown target 'nope'"),
    ('targets = ["pipe"]\ntraffic = ["64B@10G"]\n[params.pipe]\nwarp = [1]\n',
     r"params.pipe.warp: unknown parameter for a pipeline target"),
    ('targets = ["pipe"]\ntraffic = ["64B@10G"]\n[params.pipe]\nnum_stages = [0]\n',
     r"params.pipe: value out of the profile's range: .*stages.count"),
    ('targets = ["host"]\ntraffic = ["64B@10G"]\n[params.host]\ncores = [7]\n',
     r"params.host.cores: expected 1 to 6"),
    ('targets = ["pipe"]\ntraffic = ["64B@400G"]\n', r"spec.toml: traffic: .*"),
    ('targets = ["pipe"]\ntraffic = ["64B@10G"]\n[params.host]\ncores = [1]\n',
     r"params.host: not one of the targets"),
    ('targets = ["pipe"]\ntraffic = ["64B@10G"]\nspeed = 3\n', r"speed: unknown key"),
    ('targets = ["pipe"]\ntraffic = ["64B@10G"]\npackets = 0\n', r"packets: expected an integer"),
])
def test_bad_spec_one_line(tmp_path, body, match):
    """Each problem is one SweepSpecError line naming the spec and the key."""
    with pytest.raises(SweepSpecError, match=match) as exc:
        load_spec(write_spec(tmp_path, body))
    assert "\n" not in str(exc.value)


def test_missing_object_exit_2_nothing_written(tmp_path, capsys):
    """A missing object: one line, exit status 2, no output folder."""
    spec = write_spec(tmp_path, 'targets = ["pipe"]\ntraffic = ["64B@10G"]\n',
                      obj=str(tmp_path / "gone.o"))
    rc = main(["sweep", str(spec), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "programs[0].object: no such file" in err[0]
    assert not (tmp_path / "out").exists()
