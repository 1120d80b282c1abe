"""offload.report.cfg_svg: the CFG with its block classes, through dot or matplotlib."""

from __future__ import annotations

import pytest

from offload.report import cfg_svg

CFG = {"entry": "f", "functions": [{"name": "f", "entry": 0, "reachable": [0, 2, 5], "blocks": [
    {"start": 0, "end": 2, "insns": 2, "term": "branch", "succs": [2, 5], "callee": None,
     "position": {"file": "/x/p.c", "line": 10, "anchor": "L10"}, "lines": [10]},
    {"start": 2, "end": 5, "insns": 3, "term": "exit", "succs": [], "callee": None,
     "position": {"file": "/x/p.c", "line": 12, "anchor": "L12"}, "lines": [12]},
    {"start": 5, "end": 7, "insns": 2, "term": "exit", "succs": [], "callee": None,
     "position": None, "lines": []}]}]}
CLASSES = {"nic": [0, 2], "punt": [5], "host": [], "unreachable": []}
REASONS = [{"insn": 5, "insns": [5], "what": "calls bpf_fib_lookup"}]


def test_dot_text_has_classes_links_and_reasons():
    """Nodes carry their class colour, a link to the source line, the reason as tooltip."""
    dot = cfg_svg.to_dot(CFG, CLASSES, REASONS, "t")
    assert 'URL="#L10"' in dot and 'class="blk-punt"' in dot
    assert "calls bpf_fib_lookup" in dot
    assert 'b0 -> b5 [label="T"' in dot


@pytest.mark.skipif(not cfg_svg.has_dot(), reason="graphviz dot not installed")
def test_dot_svg_ids_are_prefixed():
    """Graphviz's numbered ids get the prefix, so several graphs share one page."""
    svg, engine = cfg_svg.render_cfg_svg(CFG, CLASSES, REASONS, id_prefix="cfg-pipe")
    assert engine == "dot" and svg.startswith("<svg")
    assert 'id="cfg-pipe-blk0"' in svg and 'id="graph0"' not in svg
    assert 'xlink:href="#L10"' in svg


def test_matplotlib_fallback(monkeypatch):
    """Without dot, matplotlib draws the blocks, linked to their lines."""
    monkeypatch.setattr(cfg_svg, "has_dot", lambda: False)
    svg, engine = cfg_svg.render_cfg_svg(CFG, CLASSES, REASONS)
    assert engine == "matplotlib" and svg.startswith("<svg")
    assert "#L10" in svg
