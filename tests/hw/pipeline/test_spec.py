"""docs/pipeline.md agrees with the code: op codes, comparison codes, image bit fields,
punt reasons and map register slices."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hw.pipeline import ops as O
from hw.pipeline.images import LAYOUTS

DOC = (Path(__file__).resolve().parents[3] / "docs" / "pipeline.md").read_text()


def rows(after: str) -> list[list[str]]:
    """Cells of the Markdown table at (or right after) the line starting with ``after``."""
    lines = DOC[DOC.index(after):].splitlines()
    out = []
    for line in lines[1:]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
                out.append([c.strip().strip("`") for c in cells])
        elif out:
            break
    return out if after.startswith("|") else out[1:]


@pytest.mark.parametrize("layout", LAYOUTS, ids=[lay.name for lay in LAYOUTS])
def test_image_layouts_match_document(layout):
    """Every field of every image word is documented with the same bit positions."""
    table = rows(f"#### `{layout.name}` word ({layout.width} bits)")
    documented = [(name, bits) for bits, name, _meaning in table]
    expected = [(f.name, f"[{f.lo + f.bits - 1}:{f.lo}]") for f in layout.fields]
    assert documented == expected


def test_vliw_op_codes_match_document():
    """The VLIW op table of section 5.3 lists every op with its code and widths."""
    table = rows("| op | code | widths | sizes | result |")
    documented = {name: (int(code), widths) for name, code, widths, _s, _r in table}
    for op in O.VLIW_OPS:
        code, widths = documented[op.name]
        assert code == op.code
        if op.name != "nop":
            assert widths == ", ".join(map(str, op.widths))
    assert len(documented) == len(O.VLIW_OPS)


def test_gateway_and_stateful_codes_match_document():
    """Gateway comparisons and stateful ops carry the documented codes."""
    gw = {r[0]: int(r[1]) for r in rows("| cmp | code | r | eBPF jump |")}
    assert gw == {c.name: c.code for c in O.GATEWAY_CMPS}
    sf = {r[0]: int(r[1]) for r in rows("| op | code | new value | eBPF |")}
    assert sf == {o.name: o.code for o in O.STATEFUL_OPS}


def test_metadata_indices_match_document():
    """The PHV index table names the metadata fields at the model's indices."""
    table = rows("| index | name | access | value |")
    documented = {int(r[0]): r[1] for r in table if re.fullmatch(r"\d+", r[0])}
    assert documented == {m.index: m.name for m in O.METADATA}


def test_punt_reasons_match_document():
    """The punt header's reason field lists the hardware's reasons with the model's codes."""
    row = next(line for line in DOC.splitlines() if "| punt_reason (u32 LE):" in line)
    for code, name in O.PUNT_REASONS.items():
        assert f"{code} {name}" in row
    assert f">= {O.PUNT_FIRST_CUT} the mapper's cut points" in row


def test_register_slice_keys_match_document():
    """Section 9 names a register slice's keys as config.RegisterSlice declares them."""
    import dataclasses

    from hw.pipeline.config import RegisterSlice

    keys = re.search(r"A \*\*register slice\*\* `\{([^}]*)\}`", DOC)
    assert keys is not None
    assert [k.strip() for k in keys.group(1).split(",")] == \
        [f.name for f in dataclasses.fields(RegisterSlice)]


def json_blocks(section: str) -> list[str]:
    text = DOC[DOC.index(section):]
    text = text[:text.index("\n## ", 1)]
    return re.findall(r"```json\n(.*?)```", text, re.S)


def test_document_examples_load():
    """The configuration examples of sections 10 and 12 are valid documents."""
    import json

    from hw.pipeline import PipelineModel, load_config

    full = json.loads(json_blocks("## 10. The configuration document")[0])
    del full["target"]["..."]
    model = PipelineModel(load_config(full))
    model.state.load_maps({"maps": {"rules": [{"key": "0a000001", "value": "0700000000000000"}]}})
    assert model.state.dump_maps()["maps"]["rules"][0]["value"] == "0700000000000000"
    example = load_config(json.loads(json_blocks("## 12. Worked example")[0]))
    reference = load_config(Path(__file__).with_name("ipv4_drop.json"))
    assert (example.stages, example.extracts, example.default_verdict) == \
        (reference.stages, reference.extracts, reference.default_verdict)
