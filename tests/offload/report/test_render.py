"""offload.report.render: the files of a report, the formats, links to source lines."""

from __future__ import annotations

import json
import math
import re

from offload.report.render import clean_json, fmt_num, fmt_pct, sort_key


def test_number_formats():
    """Significant digits, thousands separators, '-' for nothing."""
    assert fmt_num(None) == "-" and fmt_num(math.nan) == "-"
    assert fmt_num(1234567) == "1,234,567"
    assert fmt_num(148.8095) == "149" and fmt_num(0.04731) == "0.0473"
    assert fmt_num(12345.6) == "12,346"
    assert fmt_pct(0.828) == "82.8 %" and fmt_pct(None) == "-"
    assert sort_key(None) == "" and sort_key(2.5) == "2.5"


def test_clean_json_drops_nan():
    """NaN and infinities become null so that the document is strict JSON."""
    assert clean_json({"a": [1.0, math.inf, {"b": math.nan}]}) == {"a": [1.0, None, {"b": None}]}


def test_report_files(small_report):
    """index, summary, JSON, one page and three plots per program, the overview plot."""
    out, doc = small_report
    for name in ("index.html", "summary.md", "report.json", "plots/overview.svg"):
        assert (out / name).is_file(), name
    for p in doc["programs"]:
        assert (out / "programs" / f"{p['id']}.html").is_file()
        for key in ("throughput", "latency", "utilisation"):
            text = (out / p["plots"][key]).read_text()
            assert text.startswith("<svg"), (p["id"], key)
    loaded = json.loads((out / "report.json").read_text())
    assert loaded["schema"] == doc["schema"]
    assert not list(out.parent.glob(".out.tmp-*")), "temporary folder left behind"


def test_reasons_link_to_existing_source_anchors(small_report):
    """Every reason's link on a program page points at a line id on that page."""
    out, doc = small_report
    fw = next(p for p in doc["programs"] if p["program"] == "xdp_firewall")
    html = (out / "programs" / f"{fw['id']}.html").read_text()
    ids = set(re.findall(r'<tr id="([^"]+)"', html))
    anchors = {r["anchor"] for f in fw["feasibility"] for r in f["reasons"] if r["anchor"]}
    assert anchors and anchors <= ids
    for a in anchors:
        assert f'href="#{a}"' in html
    assert "L1" in ids and any(i.startswith("common-h-L") for i in ids)


def test_sections_show_rtl_host_and_stage_map(small_report):
    """RTL numbers where given, 'not run' with the reason elsewhere; the stage map's status."""
    out, doc = small_report
    pages = {p["program"]: (out / "programs" / f"{p['id']}.html").read_text()
             for p in doc["programs"]}
    assert "cycles per packet" in pages["xdp_drop_prog"] and "14.5" in pages["xdp_drop_prog"]
    assert "Not run: no firewall.xdp_firewall.json (nor xdp_firewall.json) in" in \
        pages["xdp_firewall"]
    assert "Unavailable:" in pages["xdp_firewall"] or "logical stages" in pages["xdp_firewall"]
    assert "verifier" in pages["xdp_firewall"]
    for page in pages.values():
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing fetched


def test_index_and_summary_list_every_program(small_report):
    """The index table has one row per (program, target); the summary one line per program."""
    out, doc = small_report
    index = (out / "index.html").read_text()
    body = index.split('id="compare-table"', 1)[1].split("<tbody>", 1)[1].split("</tbody>")[0]
    assert body.count("<tr>") == len(doc["comparison"])
    summary = (out / "summary.md").read_text()
    for p in doc["programs"]:
        assert f"| {p['id']} |" in summary  # rows are named object.program


def _cell(html: str, table: str, program: str, column: int) -> str:
    """The ``column``-th cell of ``program``'s row in the table ``table``."""
    body = html.split(f'id="{table}"', 1)[1].split("</tbody>", 1)[0]
    row = next(r for r in body.split("<tr>") if f".{program}</a>" in r)  # id: stem.program
    return re.findall(r"<td[^>]*>.*?</td>", row, re.S)[column]


def test_real_rtl_result_on_the_pages(rtl_report):
    """The program page shows pass/FAIL, the mismatches split, cycles and II against the
    model's, Mpps against the line rate, punts, the VM equivalence, differences and seed; the
    index's RTL cell is a sortable label, FAIL flagged; the summary says the same."""
    out, doc, failed = rtl_report
    by = {p["program"]: p for p in doc["programs"]}
    tx = by["xdp_tx_prog"]["rtl"]
    page = (out / "programs" / f"{by['xdp_tx_prog']['id']}.html").read_text()
    rtl = page.split('<h2 id="rtl">', 1)[1].split("<h2 ", 1)[0]
    assert '<p id="rtl-result" class="status-ok">pass: xdp_tx_prog on the pipe RTL' in rtl
    assert f"outputs {tx['output_mismatches']}, state words {tx['state_mismatches']}" in rtl
    assert f"{tx['cycles_per_packet']:g} <span class=\"muted\">(model " in rtl
    assert "of the 148.8 Mpps line rate" in rtl and "168.0 %" in rtl
    assert f"(trace seed {tx['seed']})" in rtl and "equivalent" in rtl
    assert f"{tx['punted']} of {tx['packets']}" in rtl
    bad_page = (out / "programs" / f"{by['xdp_drop_prog']['id']}.html").read_text()
    bad = bad_page.split('<h2 id="rtl">', 1)[1].split("<h2 ", 1)[0]
    assert '<p id="rtl-result" class="status-bad">FAIL' in bad
    assert 'class="num status-bad">3: outputs 3, state words 0' in bad
    assert failed["differences"][0] in bad
    glob_page = (out / "programs" / f"{by['xdp_globals']['id']}.html").read_text()
    assert "nothing to co-simulate" in glob_page
    index = (out / "index.html").read_text()
    cell = _cell(index, "matrix-table", "xdp_tx_prog", -1)
    assert '<span class="status-ok">' in cell
    assert f'data-sort="{tx["cycles_per_packet"]!r}"' in cell
    assert f"pass · {tx['cycles_per_packet']:g} cyc · II {tx['ii']:g}" in cell
    cell = _cell(index, "matrix-table", "xdp_drop_prog", -1)
    assert '<span class="status-bad">FAIL 3</span>' in cell and 'data-sort="-3.0"' in cell
    cell = _cell(index, "matrix-table", "xdp_globals", -1)
    assert 'data-sort=""' in cell and "not run" in cell
    summary = (out / "summary.md").read_text()
    assert "| **FAIL 3** |" in summary and "| not run |" in summary
    assert f"| pass · {tx['cycles_per_packet']:g} cyc · II {tx['ii']:g} |" in summary
