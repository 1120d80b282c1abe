"""Text listings: whole-object disassembly as `llvm-objdump -d` prints it, and programs
interleaved with their C source lines. Parsing stays in ebpf.loader.elf; this module only formats,
and shows every name and source line from the object through ``ebpf.display.printable``.
"""

from __future__ import annotations

import bisect
import io
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ebpf.code.disasm import format_listing
from ebpf.code.isa import decode
from ebpf.display import printable
from ebpf.loader.elf import SHF_EXECINSTR, load_bytes
from ebpf.loader.program import ProgramDef


def objdump(path: str) -> str:
    """The whole object disassembled section by section, like `llvm-objdump -d PATH`."""
    data = Path(path).read_bytes()
    load_bytes(data, path)  # validates the object; errors name the file
    elf = ELFFile(io.BytesIO(data))
    symtab = next(s for s in elf.iter_sections() if isinstance(s, SymbolTableSection))
    out = ["", f"{printable(path)}:\tfile format elf64-bpf"]
    for shndx, sec in enumerate(elf.iter_sections()):
        if sec["sh_type"] != "SHT_PROGBITS" or not sec["sh_flags"] & SHF_EXECINSTR:
            continue
        if not sec.data():
            continue
        syms = sorted(
            (s["st_value"], printable(s.name)) for s in symtab.iter_symbols()
            if s["st_shndx"] == shndx and s.name
            and s["st_info"]["type"] not in ("STT_SECTION", "STT_FILE")
        )
        labels = {value // 8: name for value, name in syms}
        addrs = [value for value, _ in syms]

        def symbolize(target: int, syms=syms, addrs=addrs) -> str | None:
            i = bisect.bisect_right(addrs, target) - 1
            if i < 0:
                return None
            value, name = syms[i]
            return name if value == target else f"{name}+0x{target - value:x}"

        out += ["", f"Disassembly of section {printable(sec.name)}:", ""]
        out += format_listing(decode(sec.data()), labels=labels, symbolize=symbolize)
    return "\n".join(out) + "\n"


def normalise(text: str) -> list[str]:
    """Lines with runs of whitespace collapsed and blank lines dropped, for comparison."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def source_listing(prog: ProgramDef) -> str:
    """A linked program's disassembly with each new C source line printed above its code."""
    comments: dict[int, list[str]] = {}
    last = None
    for slot, line in sorted(prog.lines.items()):
        key = (line.file, line.line)
        if key != last and line.text:
            text = printable(line.text.strip(), keep="\t")
            comments[slot] = [f"; {text}  [{printable(Path(line.file).name)}:{line.line}]"]
        last = key
    labels = {f.start: printable(f.name) for f in prog.functions}
    return "\n".join(format_listing(prog.insns, labels=labels, comments=comments)) + "\n"
