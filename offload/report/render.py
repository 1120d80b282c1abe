"""The report document as files: HTML pages (jinja2), SVG plots, ``report.json``, ``summary.md``.

Layout of the output folder (every link relative, nothing fetched at view time: CSS and the
small sorting script are inline, plots are SVG files next to the pages, the control-flow
graphs are inline SVG so that their blocks link to the source lines)::

    index.html                 every program and target compared, sortable
    summary.md                 the same in Markdown, for terminals and pull requests
    report.json                the document (docs/report-schema.md)
    programs/<id>.html         one page per program
    plots/<id>-throughput.svg  plots/<id>-latency.svg  plots/<id>-utilisation.svg
    plots/overview.svg
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ebpf.display import printable
from offload.report import cfg_svg, plots
from offload.report.source import read_lines

TEMPLATES = Path(__file__).resolve().parent / "templates"
VERDICT_CLASS = {"full": "v-full", "partial": "v-partial", "host-only": "v-host"}


def _env(markdown: bool = False) -> Any:
    """The templates' environment; ``markdown``: values also have ``|`` escaped, so a name
    cannot split a Markdown table cell."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, finalize=_shown_md if markdown else _shown)
    env.filters.update(num=fmt_num, pct=fmt_pct, ns=fmt_ns, sortkey=sort_key)
    env.globals.update(VERDICT_CLASS=VERDICT_CLASS, stage_columns=stage_columns)
    return env


def _shown(value: Any) -> Any:
    """Every ``{{ value }}`` of every template goes through ``printable`` (HTML autoescape comes
    after it; Markdown has no escaping of its own), except what is already ``Markup`` (the
    inline CFG drawing, source lines prepared in ``_sources``)."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


def _shown_md(value: Any) -> Any:
    value = _shown(value)
    return value.replace("|", "\\|") if isinstance(value, str) else value


# --- formatting --------------------------------------------------------------------------

def _bad(v: Any) -> bool:
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def fmt_num(v: Any, digits: int = 3) -> str:
    """A number for a table: significant digits, thousands separators; '-' for none."""
    if _bad(v):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if v == 0:
        return "0"
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_pct(v: Any) -> str:
    return "-" if _bad(v) else f"{100 * v:.1f} %"


def fmt_ns(v: Any) -> str:
    return "-" if _bad(v) else f"{fmt_num(float(v))} ns"


def sort_key(v: Any) -> str:
    """The ``data-sort`` value of a cell: numbers as they are, none as empty."""
    if _bad(v):
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def stage_columns(stage_map: dict[str, Any]) -> list[str]:
    """The resources a stage map's table shows: those with capacity, externs only when a
    stage uses them (as ``offload.schedule.resource_table`` does)."""
    caps = stage_map.get("capacity", {})
    stages = stage_map.get("stages", [])
    return [r for r in caps if caps[r] and (not r.startswith("externs.") or any(
        s.get("usage", {}).get(r) for s in stages))]


def clean_json(value: Any) -> Any:
    """The document with NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


# --- per program -------------------------------------------------------------------------

def _reason_lines(program: dict[str, Any]) -> dict[str, list[str]]:
    """Anchor -> the reasons (target: what) pointing at that line, for the source view."""
    out: dict[str, list[str]] = {}
    for f in program.get("feasibility", []):
        for r in (f.get("mapper") or {}).get("reasons", f["reasons"]):
            if r.get("anchor"):
                out.setdefault(r["anchor"], []).append(f"{f['target']}: {r['what']}")
    return out


def _sources(program: dict[str, Any]) -> list[dict[str, Any]]:
    """The source files shown on a program page; a line's text is escaped here (``Markup``),
    keeping its tabs."""
    from markupsafe import escape

    hits = _reason_lines(program)
    out = []
    for sf in program.get("sources", []):
        lines, whole = read_lines(sf)
        prefix = "L" if sf["main"] else f"{sf['slug']}-L"
        out.append({"file": sf, "whole": whole, "lines": [
            {"n": n, "text": escape(printable(text, keep="\t")), "id": f"{prefix}{n}",
             "hits": hits.get(f"{prefix}{n}", [])}
            for n, text in lines]})
    return out


def _cfgs(program: dict[str, Any]) -> list[dict[str, Any]]:
    """One inline CFG drawing per NIC target (the host and DPU run every block)."""
    cfg = program.get("cfg")
    if not cfg:
        return []
    out = []
    for f in program.get("feasibility", []):
        if f["kind"] == "cpu":
            continue
        verdict = f.get("final_verdict", f["verdict"])
        reasons = (f.get("mapper") or {}).get("reasons", f["reasons"])
        svg, engine = cfg_svg.render_cfg_svg(
            cfg, f["blocks"], reasons, id_prefix=f"cfg-{f['target']}",
            title=f"{program['program']} on {f['target']}: {verdict}")
        counts = {c: len(v) for c, v in f["blocks"].items()}
        out.append({"target": f["target"], "verdict": verdict, "svg": svg,
                    "engine": engine, "counts": counts, "source": f["blocks_source"]})
    return out


def render_program_plots(program: dict[str, Any], targets: list[dict[str, Any]],
                         out: Path) -> dict[str, str]:
    """Write the program's three plots under ``out/plots``; their paths relative to ``out``."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    pid = program["id"]
    sim = program.get("simulation")
    util, shows = plots.utilisation_svg(program, targets)
    files = {
        "throughput": plots.throughput_svg(sim, targets,
                                           f"{program['program']}: throughput against "
                                           f"frame size"),
        "latency": plots.latency_cdf_svg(sim, targets),
        "utilisation": util,
    }
    paths = {}
    for name, text in files.items():
        rel = f"plots/{pid}-{name}.svg"
        (out / rel).write_text(text, encoding="utf-8")
        paths[name] = rel
    paths["utilisation_shows"] = shows
    return paths


def _program_context(program: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    sim = program.get("simulation") or {}
    runs = sorted((r for r in sim.get("sweep", [])),
                  key=lambda r: ([t["name"] for t in doc["targets"]].index(r["target"])
                                 if r["target"] in [t["name"] for t in doc["targets"]]
                                 else 99, r["size"]))
    return {"doc": doc, "p": program, "sources": _sources(program), "cfgs": _cfgs(program),
            "sweep": runs, "latency": sim.get("latency", []),
            "rel": "../"}


# --- the whole report --------------------------------------------------------------------

def write_report(doc: dict[str, Any], out: Path,
                 step: Callable[[str], None] | None = None) -> None:
    """Every file of the report into the folder ``out`` (which exists and is empty);
    ``step`` is called once per program page and once for the index."""
    env = _env()
    step = step or (lambda _msg: None)
    (out / "programs").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for program in doc["programs"]:
        program["plots"] = render_program_plots(program, doc["targets"], out)
    programs = [p["id"] for p in doc["programs"]]
    targets = [t["name"] for t in doc["targets"]]
    size = min(doc["sim_sizes"]) if doc.get("sim_sizes") else None
    (out / "plots" / "overview.svg").write_text(
        plots.overview_svg(doc["comparison"], programs, targets, size), encoding="utf-8")
    doc["plots"] = {"overview": "plots/overview.svg"}
    page = env.get_template("program.html.j2")
    for program in doc["programs"]:
        step(f"{program['program']}: page")
        html = page.render(**_program_context(program, doc))
        (out / "programs" / f"{program['id']}.html").write_text(html, encoding="utf-8")
    step("index")
    ctx = {"doc": doc, "rows": doc["comparison"], "rel": "", "small": size,
           "large": max(doc["sim_sizes"]) if doc.get("sim_sizes") else None,
           "matrix": _matrix(doc),
           "host_names": [t["name"] for t in doc["targets"] if t["location"] == "host"]}
    (out / "index.html").write_text(env.get_template("index.html.j2").render(**ctx),
                                    encoding="utf-8")
    (out / "summary.md").write_text(_env(markdown=True).get_template("summary.md.j2").render(**ctx),
                                    encoding="utf-8")
    (out / "report.json").write_text(
        json.dumps(clean_json(doc), indent=1, allow_nan=False) + "\n", encoding="utf-8")


def _matrix(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per program: its verdict and Mpps per target, and its host figures (index, summary)."""
    by = {(r["id"], r["target"]): r for r in doc["comparison"]}
    out = []
    for p in doc["programs"]:
        host = p.get("host") or {}
        meas = host.get("measurement") or {}
        info = host.get("prog_info") or {}
        out.append({"p": p, "cells": [by.get((p["id"], t["name"])) for t in doc["targets"]],
                    "verifier": (host.get("verifier") or {}).get("status", "-"),
                    "jited": info.get("jited_prog_len"), "host_ns": meas.get("ns_per_packet"),
                    "rtl": _rtl_cell(p.get("rtl") or {})})
    return out


def _rtl_cell(rtl: dict[str, Any]) -> dict[str, Any]:
    """The index's RTL cell: label (``pass · 55 cyc · II 1``, ``FAIL 3``, ``not run``), sort
    key, CSS class, tooltip."""
    if rtl.get("status") != "ok":
        return {"label": "not run", "sort": None, "cls": "status-na",
                "title": rtl.get("reason", "")}
    passed = rtl.get("passed", True)
    title = (f"{fmt_num(rtl['packets'])} packets, {fmt_num(rtl['mismatches'])} mismatches, "
             f"{fmt_num(rtl['mpps'])} Mpps; {rtl['source']}")
    return {"label": rtl.get("label", "pass" if passed else "FAIL"), "sort": rtl.get("sort"),
            "cls": "status-ok" if passed else "status-bad", "title": title}
