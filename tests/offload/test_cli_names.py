"""Names from an object are shown escaped and intact by every command (ebpf.display).

``lpm_router.o`` with its map ``routes`` and its program ``xdp_lpm_router`` rewritten in
place (same length, in the ELF symbol table and the BTF strings) to hold an escape sequence,
rich markup, and a newline with a bell. Every command that shows names runs on it through
the real command line; stdout, stderr and the report files must hold no raw control byte,
the names must be there in their escaped form, and JSON must hold the real names.
"""

from __future__ import annotations

import io
import json
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from offload import cli
from tests.conftest import corpus_object

# tag -> the map name (6 bytes, as 'routes'); the program becomes 'xdp_' + name + '____'.
NAMES = {"esc": "r\x1b[31m", "markup": "[red]x", "newline": "ro\nte\x07"}
SHOWN = {"esc": "r\\x1b[31m", "markup": "[red]x", "newline": "ro\\nte\\x07"}
RAW_CONTROLS = ("\x1b", "\x07", "\r", "\x00")


def offload(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """``offload ARGS`` in this process (as tests/offload/test_cli.py's helper, without an
    interpreter start per command): exit status, stdout and stderr as the terminal gets them."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(args))
    res = subprocess.CompletedProcess(["offload", *args], code, out.getvalue(), err.getvalue())
    if check:
        res.check_returncode()
    return res


def renamed(data: bytes, name: str) -> bytes:
    raw = name.encode()
    assert len(raw) == len(b"routes")
    out = data.replace(b"\0routes\0", b"\0" + raw + b"\0")
    out = out.replace(b"\0xdp_lpm_router\0", b"\0xdp_" + raw + b"____\0")
    assert out.count(b"\0" + raw + b"\0") == data.count(b"\0routes\0") >= 2  # symtab + BTF
    return out


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> dict[str, Path]:
    """tag -> the renamed object, in a folder of its own."""
    data = corpus_object("lpm_router").read_bytes()
    folder = tmp_path_factory.mktemp("names")
    out = {}
    for tag, name in NAMES.items():
        path = folder / f"{tag}.o"
        path.write_bytes(renamed(data, name))
        out[tag] = path
    return out


def assert_clean(text: str, what: str) -> None:
    """No byte a terminal would act on."""
    for c in RAW_CONTROLS:
        assert c not in text, f"{what}: raw {c!r}"


def assert_shown(text: str, tag: str, what: str) -> None:
    """Clean, the map name there escaped, and the raw name (its newline) nowhere."""
    assert_clean(text, what)
    assert SHOWN[tag] in text, f"{what}: {SHOWN[tag]!r} missing"
    if NAMES[tag] != SHOWN[tag]:
        assert NAMES[tag] not in text, f"{what}: raw name"


def program(tag: str) -> str:
    return f"xdp_{SHOWN[tag]}____"


@pytest.mark.parametrize("tag", NAMES)
def test_inspect_table_and_source(objects, tag):
    """inspect: the program and map tables show both names escaped, rows not split."""
    res = offload("inspect", "--source", str(objects[tag]), check=True)
    assert_shown(res.stdout, tag, "inspect")
    assert_clean(res.stderr, "inspect stderr")
    rows = [line for line in res.stdout.splitlines() if SHOWN[tag] in line]
    assert any(program(tag) in line and "│ xdp " in line for line in rows)  # program row
    assert any(line.startswith(f"│ {SHOWN[tag]} ") and "lpm_trie" in line for line in rows)


@pytest.mark.parametrize("tag", NAMES)
def test_inspect_json_holds_the_real_names(objects, tag):
    """inspect --json: JSON escapes itself, so it holds the real names, byte for byte."""
    res = offload("inspect", "--json", str(objects[tag]), check=True)
    assert_clean(res.stdout, "inspect --json")  # json.dump escapes control characters
    doc = json.loads(res.stdout)
    assert NAMES[tag] in [m["name"] for m in doc["maps"]]
    assert doc["programs"][0]["name"] == f"xdp_{NAMES[tag]}____"
    assert NAMES[tag] in doc["programs"][0]["maps"]


@pytest.mark.parametrize("tag", NAMES)
def test_check_text_and_json(objects, tag):
    """check: the verdict line and the reason naming the map show them escaped; JSON real."""
    res = offload("check", str(objects[tag]), "--target", "nfp", check=True)
    assert_shown(res.stdout, tag, "check")
    assert f"{program(tag)} on nfp: partial" in res.stdout
    assert f"map '{SHOWN[tag]}' is a lpm_trie" in res.stdout
    doc = json.loads(offload("check", str(objects[tag]), "--target", "nfp", "--json",
                             check=True).stdout)
    assert any(f"map '{NAMES[tag]}'" in r["what"] for r in doc["reasons"])


@pytest.mark.parametrize("tag", NAMES)
def test_map(objects, tag):
    """map: the heading and the reasons table show the names escaped."""
    res = offload("map", str(objects[tag]), "--target", "pipe", "--no-equivalence",
                  check=True)
    assert_shown(res.stdout, tag, "map")
    assert f"{program(tag)} on pipe:" in res.stdout
    assert f"map '{SHOWN[tag]}' (16384 entries)" in res.stdout
    assert_clean(res.stderr, "map stderr")


@pytest.mark.parametrize("tag", NAMES)
def test_sim(objects, tag):
    """sim: the table's program cell shows the name escaped; stderr is clean."""
    res = offload("sim", str(objects[tag]), "--target", "pipe", "--traffic", "64B@10G",
                  "--packets", "300", "--host-cost", "model", check=True)
    assert_clean(res.stdout + res.stderr, "sim")
    assert f"│ {program(tag)} │ pipe " in res.stdout


@pytest.fixture(scope="module")
def report(objects, tmp_path_factory) -> Path:
    """One report of the three renamed objects (two targets, a short simulation)."""
    out = tmp_path_factory.mktemp("report") / "rep"
    res = offload("report", *(str(p) for p in objects.values()), "--target", "pipe",
                  "--target", "nfp", "--packets", "300", "--sizes", "64",
                  "--host-packets", "4", "--jobs", "1", "-o", str(out), check=True)
    assert_clean(res.stdout + res.stderr, "report")
    return out


def test_report_files_hold_no_raw_control_bytes(report):
    """Every file of the report (HTML, Markdown, JSON, SVG) is free of raw control bytes."""
    files = [p for p in report.rglob("*") if p.is_file()]
    assert {"index.html", "summary.md", "report.json"} <= {p.name for p in files}
    assert any(p.suffix == ".svg" for p in files)
    for p in files:
        assert_clean(p.read_text(encoding="utf-8"), str(p.relative_to(report)))


@pytest.mark.parametrize("tag", NAMES)
def test_report_pages_show_names_escaped(report, tag):
    """The program page shows the map and program names escaped; HTML escaping on top."""
    pages = {p.name: p for p in (report / "programs").iterdir()}
    # the page's file name is the id: characters but [A-Za-z0-9_.-] as '-'
    page = "".join(c if c.isascii() and (c.isalnum() or c in "_.-") else "-"
                   for c in f"{tag}.xdp_{NAMES[tag]}____") + ".html"
    assert page in pages, sorted(pages)
    html = pages[page].read_text(encoding="utf-8")
    assert_shown(html, tag, page)
    assert f"map &#39;{SHOWN[tag]}&#39;" in html
    assert program(tag) in html


def test_report_summary_and_index_rows_stay_whole(report):
    """summary.md: one table row per program, names escaped; index.html names them too."""
    md = (report / "summary.md").read_text(encoding="utf-8")
    index = (report / "index.html").read_text(encoding="utf-8")
    for tag in NAMES:
        # rows are named <object stem>.<program> (the stem is the tag)
        rows = [line for line in md.splitlines()
                if line.startswith(f"| {tag}.{program(tag)} |")]
        assert len(rows) == 2, (tag, md)  # the matrix and the best-target table
        assert program(tag) in index


def test_report_json_holds_the_real_names(report):
    """report.json keeps the real names (JSON escapes them itself)."""
    doc = json.loads((report / "report.json").read_text(encoding="utf-8"))
    names = {p["program"] for p in doc["programs"]}
    assert names == {f"xdp_{n}____" for n in NAMES.values()}
    maps = {m["name"] for p in doc["programs"] for m in p["summary"]["maps"]}
    assert set(NAMES.values()) <= maps


# --- errors: one line, names escaped -----------------------------------------------------

def one_line_error(res, *expected: str) -> str:
    assert res.returncode == 2, res
    assert res.stdout == ""
    assert res.stderr.endswith("\n") and res.stderr.count("\n") == 1, repr(res.stderr)
    assert_clean(res.stderr, "error")
    for text in expected:
        assert text in res.stderr, (text, res.stderr)
    return res.stderr


def test_error_with_newline_in_a_btf_name(tmp_path):
    """The CI find: a newline in lpm_router's BTF field name 'value' keeps the error on one
    line, with the name escaped."""
    data = corpus_object("lpm_router").read_bytes()
    path = tmp_path / "mutant.o"
    path.write_bytes(data.replace(b"\0value\0", b"\0va\nue\0"))
    one_line_error(offload("inspect", str(path)),
                   "mutant.o: map 'routes': unknown map definition field 'va\\nue'")


@pytest.mark.parametrize("tag", NAMES)
def test_error_naming_an_unknown_program(objects, tag):
    """A --program that is not there: the error lists the object's programs, escaped."""
    res = offload("check", str(objects[tag]), "--target", "pipe", "--program",
                  f"no{NAMES[tag]}")
    one_line_error(res, f"no{SHOWN[tag]}")


@pytest.mark.parametrize("tag", NAMES)
def test_error_naming_a_file(tmp_path, tag):
    """A file name with control characters is named escaped in the one-line error."""
    path = tmp_path / f"x{NAMES[tag]}.o"
    path.write_text("not an object\n")
    one_line_error(offload("inspect", str(path)), f"x{SHOWN[tag]}.o: not an ELF file")
    one_line_error(offload("sim", str(tmp_path / f"gone{NAMES[tag]}.o"), "--target", "pipe"),
                   f"gone{SHOWN[tag]}.o")
