"""Every `offload` subcommand x a table of bad values: each command line either succeeds
(exit 0) or prints exactly one line on stderr and exits 2; never a traceback, a hang or an
allocation of what a value merely asks for. Cases run in a forked child bounded in memory
and time (tests/bounded.py); stdout and stderr are captured at the file descriptors, so a
library printing behind our back counts too.

The table has specific expectations where a value used to be accepted silently or to
crash (issue 17's list): those assert the message as well.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import pytest

from offload.cli import main
from tests.bounded import failures, run_bounded
from tests.conftest import corpus_object

CASE_TIMEOUT_S = 60.0  # a budget against hangs, not a speed test
BAD_INTS = ["-1", "0", "1000000000000", "99999999999999999999999", "abc", "1e3", "0x10", "",
            "nan", "4294967301"]
BAD_SEEDS = [v for v in BAD_INTS if v != "0"]  # a valid seed would start a co-simulation
BAD_FLOATS = ["-1", "0", "nan", "inf", "-inf", "1e300", "abc", ""]
BAD_NAMES = ["nosuch", "", "../../etc/passwd", "a\nb", "%s%n"]


def _files(tmp: Path) -> list[str]:
    """Bad input files: missing, a folder, empty, text, a truncated ELF, a device, deep
    nesting (JSON and TOML), a state document of the wrong types."""
    (tmp / "empty").write_bytes(b"")
    (tmp / "text.o").write_text("not an object\n")
    (tmp / "trunc.o").write_bytes(corpus_object("firewall").read_bytes()[:300])
    (tmp / "deep.json").write_text('{"maps": ' + "[" * 50_000 + "]" * 50_000 + "}")
    (tmp / "deep.toml").write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    (tmp / "types.json").write_text('{"maps": {}, "routes": 5, "clock": {"step_ns": 1.5}}')
    (tmp / "dir").mkdir()
    return [str(tmp / n) for n in ("missing", "dir", "empty", "text.o", "trunc.o",
                                   "deep.json", "deep.toml", "types.json")] + ["/dev/null"]


def _table(tmp: Path) -> list[list[str]]:
    obj = str(corpus_object("xdp_pass"))
    out = str(tmp / "out")
    files = _files(tmp)
    # subcommand -> (base argv, {option: bad values}); the base is valid and quick
    specs: dict[str, tuple[list[str], dict[str, list[str]]]] = {
        "inspect": (["inspect", obj], {}),
        "disasm": (["disasm", obj], {"--syntax": ["x"]}),
        "asm": (["asm", str(tmp / "ok.s"), "-o", out], {}),
        "run": (["run", obj, "--random", "3"], {"--random": BAD_INTS, "--seed": BAD_INTS,
                                                "--maps": files, "--pcap": files}),
        "kernel": (["kernel", obj, "--random", "3"], {"--random": BAD_INTS, "--repeat": BAD_INTS,
                                                      "--seed": BAD_INTS, "--maps": files}),
        "diff": (["diff", obj, "--random", "3"], {"--random": BAD_INTS, "--seed": BAD_INTS,
                                                  "--maps": files}),
        "targets": (["targets"], {"--target": BAD_NAMES, "--target-file": files}),
        "check": (["check", obj], {"--target": BAD_NAMES, "--program": BAD_NAMES,
                                   "--target-file": files}),
        "sim": (["sim", obj, "--packets", "500", "--host-cost", "model"],
                {"--packets": BAD_INTS, "--seed": BAD_INTS, "--host-cores": BAD_INTS,
                 "--traffic": ["64B@10G,flows=99999999999", "64B@0G", "1B@10G", "imix@101%",
                               "64B@10G,zipf=nan", "pcap:/nonexistent@10G", ""],
                 "--queues": ["nic=-1", "nic=²", "nic=99999999999999", "x=1", "nic"],
                 "--scenario": files, "--maps": files, "--target": BAD_NAMES,
                 "--program": BAD_NAMES}),
        "report": (["report", obj, "-o", out, "--no-sim", "--target", "pipe"],
                   {"--packets": BAD_INTS, "--trace-packets": BAD_INTS,
                    "--host-packets": BAD_INTS, "--host-repeat": BAD_INTS,
                    "--mapper-time-limit": BAD_FLOATS, "--seed": BAD_INTS,
                    "--jobs": BAD_INTS, "--sizes": ["0", "abc", "64,1e9", ""],
                    "--target": BAD_NAMES, "--maps-dir": files[:3],
                    "--rtl-results": files[:3]}),
        "map": (["map", obj, "--no-equivalence"],
                {"--time-limit": BAD_FLOATS, "--scenario": files, "--target": BAD_NAMES,
                 "--program": BAD_NAMES, "--images": [str(tmp / "img")]}),
        "rtl": (["rtl", obj], {"--packets": BAD_INTS, "--seed": BAD_SEEDS,
                               "--target": BAD_NAMES, "--scenario": files,
                               "--program": BAD_NAMES}),
        "sweep": (["sweep", str(tmp / "missing.toml"), "-o", out],
                  {"--workers": BAD_INTS}),
    }
    (tmp / "ok.s").write_text("mov32 %r0, 2\nexit\n")
    lines = []
    for name, (base, options) in specs.items():
        lines.append([name, "--no-such-option"])
        for bad in files:  # the positional input
            lines.append([name, bad])
        for option, values in options.items():
            lines += [[*base, option, value] for value in values]
    return lines


def _run_cli(argv: list[str]) -> str:
    """main(argv) with fds 1 and 2 captured: "ok" (exit 0), "error" (exit 2, one line on
    stderr starting with the program's name), anything else raises."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        try:
            rc = main(argv)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    lines = text.strip("\n").splitlines()
    if rc == 0:
        return "ok"
    if rc == 2 and len(lines) == 1 and lines[0].startswith("offload"):
        return "error"
    raise AssertionError(f"exit {rc}, stderr {text[-400:]!r}")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    table = _table(tmp)
    results = run_bounded(_run_cli, table, case_timeout_s=CASE_TIMEOUT_S)
    return table, results


def test_every_subcommand_times_bad_values_is_one_line_or_success(outcomes):
    """Every command line of the table: exit 0, or one stderr line and exit 2; no crash,
    no hang, no memory blow-up."""
    table, results = outcomes
    assert len(results) == len(table) > 300
    bad = [f"{' '.join(table[o.index])!r}: {o.kind}: {o.detail}"
           for o in failures(results, {"ok", "error"})]
    assert bad == []


@pytest.mark.parametrize(("argv", "message"), [
    (["kernel", "--random", "1", "--repeat", "4294967301"], "--repeat: expected an integer "
                                                            "in 1..4294967295, got 4294967301"),
    (["sim", "--seed", "-1"], "--seed: expected an integer in 0..4294967295, got -1"),
    (["sim", "--packets", str(10**12)], "--packets: expected an integer in 1..10000000"),
    (["run", "--random", str(10**12)], "--random: expected an integer in 1..1000000"),
    (["map", "--time-limit", "nan"], "--time-limit: expected a number in (0, 86400]"),
    (["map", "--time-limit", "-1"], "--time-limit: expected a number in (0, 86400]"),
    (["map", "--images", "IMG"], "--images DIR writes the images of the configuration: it "
                                 "needs -o CONFIG.json"),
    (["sim", "--traffic", "64B@10G,flows=99999999999"], "flows: expected an integer in "
                                                        "1..10000000"),
])
def test_values_once_accepted_or_crashing_are_refused(argv, message, capsys):
    """The command lines issue 17 found accepted silently or crashing: exit 2 with the
    range in the message."""
    rc = main([argv[0], str(corpus_object("xdp_pass")), *argv[1:]])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err, err


def test_scenario_is_read_without_equivalence(tmp_path, capsys):
    """map --no-equivalence --scenario BAD.json reads (and refuses) the file."""
    bad = tmp_path / "bad.json"
    bad.write_text("{bad")
    rc = main(["map", str(corpus_object("xdp_pass")), "--no-equivalence", "--scenario",
               str(bad)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "bad.json: not JSON" in err, err


def test_report_help_prints(capsys):
    """offload report --help prints the help (the '%' of its default traffic is escaped)."""
    assert main(["report", "--help"]) == 0
    assert "imix@100%" in capsys.readouterr().out
