"""Control-flow graphs as SVG, with the blocks that stay on the NIC highlighted.

Input is the report document's ``cfg`` (functions -> blocks with their first source line)
and one target's block classes (``nic`` / ``punt`` / ``host`` / ``unreachable``). Each block
links to its source line (``#L55``) and, when it is a punt point, its tooltip names the
reasons. Graphviz ``dot`` lays the graph out when it is installed (``/usr/bin/dot``, Debian
package ``graphviz``); otherwise a layered drawing with matplotlib stands in (blocks in rows
by their depth from the entry, one column group per function).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from ebpf.display import printable
from offload.report.source import slug

DOT_TIMEOUT_S = 60
STYLE = {  # class -> (fill, border)
    "nic": ("#c8e6c9", "#2e7d32"),
    "punt": ("#ffe0b2", "#e65100"),
    "host": ("#eceff1", "#607d8b"),
    "unreachable": ("#ffffff", "#b0bec5"),
}
LEGEND = {"nic": "stays on the NIC", "punt": "punt point (an infeasible construct)",
          "host": "runs on the host", "unreachable": "unreachable"}


def _esc(text: str) -> str:
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _label(block: dict[str, Any]) -> str:
    last = block["end"] - 1
    head = f"{block['start']}" if last == block["start"] else f"{block['start']}-{last}"
    pos = block.get("position")
    where = ""
    if pos:
        lines = block.get("lines") or [pos["line"]]
        span = f"{min(lines)}" if min(lines) == max(lines) else f"{min(lines)}-{max(lines)}"
        where = f"\n{printable(pos['file'].rsplit('/', 1)[-1])}:{span}"
    tail = {"call": f"\ncall {printable(block.get('callee'))}", "tail": "\ntail call",
            "exit": "\nexit"}.get(block["term"], "")
    return f"slots {head} ({block['insns']}){where}{tail}"


def _classes(blocks_by_class: Mapping[str, list[int]]) -> dict[int, str]:
    return {s: c for c, starts in blocks_by_class.items() for s in starts}


def to_dot(cfg: dict[str, Any], blocks_by_class: Mapping[str, list[int]],
           reasons: list[dict[str, Any]] | None = None, title: str = "") -> str:
    """The graph in Graphviz syntax."""
    cls = _classes(blocks_by_class)
    why: dict[int, list[str]] = {}
    starts = {b["start"]: b for f in cfg["functions"] for b in f["blocks"]}
    for r in reasons or []:
        for s in r.get("insns") or [r["insn"]]:
            owner = max((b for b in starts if b <= s and s < starts[b]["end"]), default=None)
            if owner is not None:
                why.setdefault(owner, []).append(f"slot {s}: {printable(r['what'])}")
    out = ["digraph cfg {", '  graph [rankdir=TB, fontname="DejaVu Sans", fontsize=11, '
           f'nodesep=0.25, ranksep=0.3, label="{_esc(printable(title))}", labelloc=t];',
           '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans Mono", '
           'fontsize=9, margin="0.08,0.04"];',
           '  edge [arrowsize=0.6, color="#546e7a"];']
    for i, f in enumerate(cfg["functions"]):
        out.append(f'  subgraph cluster_{i} {{ label="{_esc(printable(f["name"]))}"; '
                   'style="rounded,dashed"; color="#90a4ae"; fontname="DejaVu Sans";')
        for b in f["blocks"]:
            c = cls.get(b["start"], "unreachable")
            fill, border = STYLE[c]
            attrs = [f'label="{_esc(_label(b))}"', f'fillcolor="{fill}"', f'color="{border}"',
                     f'id="blk{b["start"]}"', f'class="blk-{c}"']
            if c == "unreachable":
                attrs.append('style="rounded,filled,dashed"')
            if b["start"] in why:
                attrs.append('penwidth=2')
            pos = b.get("position")
            if pos and pos.get("anchor"):
                attrs.append(f'URL="#{pos["anchor"]}"')
            tip = "; ".join(why.get(b["start"], [])) or f"{LEGEND[c]}"
            attrs.append(f'tooltip="{_esc(tip)}"')
            out.append(f'    b{b["start"]} [{", ".join(attrs)}];')
        out.append("  }")
    entries = {g["name"]: g["entry"] for g in cfg["functions"]}
    for f in cfg["functions"]:
        for b in f["blocks"]:
            for k, d in enumerate(b["succs"]):
                attr = ' [label="T", fontsize=8]' if b["term"] == "branch" and k == 1 else ""
                out.append(f'  b{b["start"]} -> b{d}{attr};')
            if b["term"] == "call" and b.get("callee") in entries:
                out.append(f'  b{b["start"]} -> b{entries[b["callee"]]} '
                           '[style=dashed, color="#8e24aa"];')
    out.append("}")
    return "\n".join(out) + "\n"


def has_dot() -> bool:
    return shutil.which("dot") is not None


def _strip_prolog(svg: str) -> str:
    i = svg.find("<svg")
    return svg[i:] if i >= 0 else svg


def _uniquify(svg: str, prefix: str) -> str:
    """Graphviz numbers its ids (``graph0``, ``node1``, ``edge1``...): prefix them so that
    several graphs can be inline in one page."""
    for name in ("graph", "node", "edge", "clust", "a_node", "a_edge"):
        svg = svg.replace(f'id="{name}', f'id="{prefix}-{name}')
    return svg


def render_cfg_svg(cfg: dict[str, Any], blocks_by_class: Mapping[str, list[int]],
                   reasons: list[dict[str, Any]] | None = None, *, title: str = "",
                   id_prefix: str = "cfg") -> tuple[str, str]:
    """(SVG text without XML prolog, the layout engine: ``dot`` or ``matplotlib``)."""
    if has_dot():
        dot = to_dot(cfg, blocks_by_class, reasons, title)
        try:
            proc = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True,
                                  text=True, timeout=DOT_TIMEOUT_S, check=True)
            svg = proc.stdout.replace('id="blk', f'id="{slug(id_prefix)}-blk')
            return _uniquify(_strip_prolog(svg), slug(id_prefix)), "dot"
        except (OSError, subprocess.SubprocessError):
            pass
    return _strip_prolog(_matplotlib_cfg(cfg, blocks_by_class, title)), "matplotlib"


def _layers(f: dict[str, Any]) -> dict[int, int]:
    """Depth of each block from the function's entry over forward edges (reverse
    postorder), unreachable blocks below the rest."""
    order = f["reachable"]
    index = {b: i for i, b in enumerate(order)}
    succs = {b["start"]: b["succs"] for b in f["blocks"]}
    depth = {order[0]: 0} if order else {}
    for b in order:
        for d in succs.get(b, ()):
            if d in index and index[d] > index[b]:
                depth[d] = max(depth.get(d, 0), depth[b] + 1)
    bottom = max(depth.values(), default=-1) + 1
    for b in f["blocks"]:
        depth.setdefault(b["start"], bottom)
    return depth


def _matplotlib_cfg(cfg: dict[str, Any], blocks_by_class: Mapping[str, list[int]],
                    title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    cls = _classes(blocks_by_class)
    pos: dict[int, tuple[float, float]] = {}
    x0 = 0.0
    box_w, box_h, gap_x, gap_y = 2.4, 0.9, 0.4, 0.6
    rows = 1
    for f in cfg["functions"]:
        layers = _layers(f)
        per: dict[int, int] = {}
        width = 1
        for b in f["blocks"]:
            d = layers[b["start"]]
            col = per.get(d, 0)
            per[d] = col + 1
            width = max(width, col + 1)
            pos[b["start"]] = (x0 + col * (box_w + gap_x), -d * (box_h + gap_y))
            rows = max(rows, d + 1)
        x0 += width * (box_w + gap_x) + 1.0
    fig_w = max(4.0, min(40.0, x0 * 0.55))
    fig_h = max(3.0, min(60.0, rows * (box_h + gap_y) * 0.55 + 0.6))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    for f in cfg["functions"]:
        for b in f["blocks"]:
            x, y = pos[b["start"]]
            fill, border = STYLE[cls.get(b["start"], "unreachable")]
            patch = FancyBboxPatch((x, y), box_w, box_h, boxstyle="round,pad=0.02",
                                   facecolor=fill, edgecolor=border, linewidth=1)
            anchor = (b.get("position") or {}).get("anchor")
            if anchor:
                patch.set_url(f"#{anchor}")
            ax.add_patch(patch)
            ax.text(x + box_w / 2, y + box_h / 2, _label(b), ha="center", va="center",
                    fontsize=6, family="monospace", parse_math=False)
            for d in b["succs"]:
                if d in pos:
                    dx, dy = pos[d]
                    ax.annotate("", xy=(dx + box_w / 2, dy + box_h),
                                xytext=(x + box_w / 2, y),
                                arrowprops={"arrowstyle": "->", "color": "#546e7a",
                                            "lw": 0.7})
    ax.set_title(printable(title), fontsize=9, parse_math=False)
    ax.autoscale_view()
    ax.set_aspect("auto")
    ax.axis("off")
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
