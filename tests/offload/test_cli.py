"""The `offload` command line: output shapes, and bad input as one line with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ebpf.code.listing import normalise
from tests.conftest import ROOT, corpus_object


def offload(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "offload", *args], capture_output=True,
                          text=True, cwd=ROOT, check=check)


def test_inspect_json_shape():
    """inspect --json lists programs and maps with the documented keys."""
    doc = json.loads(offload("inspect", "--json", str(corpus_object("firewall")),
                             check=True).stdout)
    prog = doc["programs"][0]
    assert {"name", "section", "type", "insn_count", "helpers", "maps"} <= set(prog)
    assert {"id": 1, "name": "map_lookup_elem"} in prog["helpers"]
    for m in doc["maps"]:
        assert {"name", "type", "key_size", "value_size", "max_entries"} <= set(m)
    assert "lpm_trie" in {m["type"] for m in doc["maps"]}


def test_inspect_source_interleaves_c_lines():
    """inspect --source shows C source lines above the instructions they produced."""
    out = offload("inspect", "--source", str(corpus_object("xdp_tx")), check=True).stdout
    assert "xdp_tx.c:" in out
    assert "exit" in out


def test_disasm_elf_equals_llvm_objdump():
    """`offload disasm X.o` prints what `llvm-objdump -d X.o` prints."""
    obj = str(corpus_object("katran_lb"))
    ours = offload("disasm", obj, check=True).stdout
    theirs = subprocess.run(["llvm-objdump", "-d", obj], capture_output=True, text=True,
                            check=True).stdout
    assert normalise(ours) == normalise(theirs)


def test_asm_then_disasm_roundtrip(tmp_path):
    """asm writes raw bytecode that disasm prints back in either syntax."""
    src = tmp_path / "prog.asm"
    src.write_text("mov32 %r0, 0\nldxb %r1, [%r1+2]\njeq %r1, 0x10, out\nmov %r0, 1\n"
                   "out:\nexit\n")
    offload("asm", str(src), "-o", str(tmp_path / "prog.bin"), check=True)
    raw = (tmp_path / "prog.bin").read_bytes()
    assert len(raw) == 5 * 8
    llvm = offload("disasm", str(tmp_path / "prog.bin"), check=True).stdout
    assert "if r1 == 16 goto +1" in llvm
    ubpf = offload("disasm", "--syntax", "ubpf", str(tmp_path / "prog.bin"), check=True).stdout
    again = tmp_path / "again.asm"
    again.write_text(ubpf)
    offload("asm", str(again), "-o", str(tmp_path / "again.bin"), check=True)
    assert (tmp_path / "again.bin").read_bytes() == raw


def bad_inputs(tmp_path: Path) -> list[tuple[list[str], str]]:
    text = tmp_path / "notes.o"
    text.write_text("not an object\n")
    trunc = tmp_path / "trunc.o"
    trunc.write_bytes(corpus_object("firewall").read_bytes()[:300])
    raw = tmp_path / "bad.bin"
    raw.write_bytes(bytes.fromhex("ff00000000000000"))
    asm = tmp_path / "bad.asm"
    asm.write_text("mov32 %r0, 0\nfrobnicate %r1\n")
    return [
        (["inspect", str(text)], "not an ELF file"),
        (["inspect", str(trunc)], "trunc.o: "),
        (["disasm", str(trunc)], "trunc.o: "),
        (["disasm", str(raw)], "bad.bin: insn 0: unknown opcode 0xff"),
        (["asm", str(asm), "-o", str(tmp_path / "out.bin")], "bad.asm: line 2"),
        (["inspect", str(tmp_path / "missing.o")], "missing.o"),
    ]


def test_bad_input_is_one_line_exit_2(tmp_path):
    """Each bad input prints one line naming the file and exits 2, writing nothing."""
    for args, needle in bad_inputs(tmp_path):
        proc = offload(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (args, proc.stderr)
        assert needle in lines[0] and lines[0].startswith("offload: error: ")
    assert not (tmp_path / "out.bin").exists()


def test_debug_shows_traceback(tmp_path):
    """--debug re-raises so the traceback is shown."""
    text = tmp_path / "notes.o"
    text.write_text("x")
    proc = offload("--debug", "inspect", str(text))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_console_script_installed():
    """The `offload` console script is installed beside the interpreter."""
    script = Path(sys.executable).parent / "offload"
    if not script.exists():
        pytest.skip("package not installed into this interpreter's environment")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "inspect" in out.stdout
