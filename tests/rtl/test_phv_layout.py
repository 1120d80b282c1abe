"""The PHV layout has one source, rtl_models/tbkit/phv.py (FIELDS): pipe_defs.vh's offsets
are generated from it, and Icarus computes the same offsets as the Python layout."""

from __future__ import annotations

import subprocess

import pytest

from rtl_models.tbkit.phv import BEGIN, END, FIELDS, PhvLayout, verilog_layout, write_verilog
from tests.conftest import ROOT

DEFS = ROOT / "rtl_models" / "rtl" / "pipe_defs.vh"


def test_header_block_is_the_generated_one():
    """The block between the markers of pipe_defs.vh is what phv.py generates, byte for byte."""
    text = DEFS.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    block = text.split(BEGIN + "\n")[1].split(END + "\n")[0]
    assert block == verilog_layout()


def test_write_verilog_rewrites_only_the_block(tmp_path):
    """A header whose block was edited by hand is put back; the rest of the file is kept."""
    copy = tmp_path / "pipe_defs.vh"
    copy.write_text(DEFS.read_text().replace("localparam PHV_PUNT = PHV_REDIRECT + 32;",
                                             "localparam PHV_PUNT = PHV_REDIRECT + 33;"))
    assert write_verilog(copy) is True
    assert copy.read_text() == DEFS.read_text()
    assert write_verilog(copy) is False


@pytest.mark.rtl("iverilog")
@pytest.mark.parametrize("params", [(32, 64, 256, 64), (4, 8, 16, 8), (64, 128, 512, 128)])
def test_icarus_computes_the_python_offsets(tmp_path, params):
    """Icarus elaborates pipe_defs.vh with the parameters and prints every PHV_* offset and
    PHV_BITS: they equal PhvLayout's."""
    nc, pb, wb, wh = params
    names = [param for _, param, _ in FIELDS] + ["PHV_BITS"]
    displays = "\n".join(f'    $display("{n} %0d", {n});' for n in names)
    (tmp_path / "top.v").write_text(f"""
module top #(parameter NUM_CONTAINERS = {nc}, parameter PREDICATE_BITS = {pb},
             parameter WINDOW_BYTES = {wb}, parameter WINDOW_HEADROOM = {wh}) ();
`include "pipe_defs.vh"
initial begin
{displays}
end
endmodule
""")
    subprocess.run(["iverilog", "-g2005", "-I", str(DEFS.parent), "-o", str(tmp_path / "a.vvp"),
                    str(tmp_path / "top.v")], check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "a.vvp")], check=True,
                         capture_output=True, text=True).stdout
    got = {k: int(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}
    layout = PhvLayout(nc, pb, wb, wh)
    offsets = layout.offsets()
    want = {param: offsets[name][0] for name, param, _ in FIELDS} | {"PHV_BITS": layout.bits}
    assert got == want
