"""offload.report.source: finding the C files named by line info, anchors, BTF fallback."""

from __future__ import annotations

from ebpf.loader.elf import load
from offload.report.source import (
    line_anchor,
    read_lines,
    resolve_source,
    slug,
    source_files,
)
from tests.conftest import ROOT, corpus_object


def test_anchors():
    """The main file's lines are L<n>; other files carry their slug."""
    assert line_anchor("/x/firewall.c", 55, "/x/firewall.c") == "L55"
    assert line_anchor("/x/common.h", 12, "/x/firewall.c") == "common-h-L12"
    assert line_anchor(None, 3, "/x/firewall.c") is None
    assert slug("a b/c.d+e.h") == "c-d-e-h"


def test_resolve_by_trailing_path(tmp_path):
    """A path from another checkout is found by its tail under the project root."""
    found = resolve_source("/elsewhere/checkout/examples/xdp/firewall.c", tmp_path)
    assert found == ROOT / "examples" / "xdp" / "firewall.c"
    assert resolve_source("/elsewhere/nothing_like_it.c", tmp_path) is None


def test_source_files_main_first():
    """firewall: firewall.c (main) then common.h, both found."""
    prog = load(corpus_object("firewall")).programs[0]
    files = source_files(prog, corpus_object("firewall"))
    assert [f.main for f in files] == [True, False]
    assert files[0].name.endswith("firewall.c") and files[1].name.endswith("common.h")
    assert all(f.resolved for f in files)


def test_missing_file_falls_back_to_btf_lines():
    """Without the file, the lines BTF carries are shown (whole=False)."""
    lines, whole = read_lines({"resolved": None, "btf_lines": {"7": "return XDP_DROP;",
                                                               "3": "int x;"}})
    assert not whole and lines == [(3, "int x;"), (7, "return XDP_DROP;")]
    lines, whole = read_lines({"resolved": str(ROOT / "examples" / "xdp" / "xdp_drop.c"),
                               "btf_lines": {}})
    assert whole and len(lines) > 3
