"""`offload inspect`: what an object holds (programs, maps, helpers), as data and as text."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ebpf.code.listing import source_listing
from ebpf.display import markup, printable
from ebpf.kernel_enums import helper_name
from ebpf.loader.elf import load


def inspect_doc(path: str, *, source: bool = False) -> dict[str, Any]:
    """The JSON document of `offload inspect --json` for one object."""
    obj = load(path)
    programs = []
    for prog in obj.programs:
        entry: dict[str, Any] = {
            "name": prog.name,
            "section": prog.section,
            "type": prog.prog_type,
            "insn_count": prog.own_slots,
            "linked_insn_count": prog.num_slots,
            "subprograms": [f.name for f in prog.functions[1:]],
            "helpers": [{"id": h, "name": helper_name(h)} for h in prog.helper_ids()],
            "maps": [obj.maps[i].name for i in prog.map_indices],
        }
        if source:
            entry["listing"] = source_listing(prog)
        programs.append(entry)
    maps = [
        {
            "name": m.name,
            "type": m.type_name,
            "key_size": m.key_size,
            "value_size": m.value_size,
            "max_entries": m.max_entries,
            "flags": m.flags,
            "section": m.section,
            **({"inner": m.inner.name} if m.inner else {}),
            **({"values": {str(k): v for k, v in sorted(m.values.items())}} if m.values else {}),
        }
        for m in obj.maps
    ]
    return {"file": path, "license": obj.license, "programs": programs, "maps": maps}


def render_inspect(docs: list[dict[str, Any]], *, source: bool = False) -> None:
    """The tables of `offload inspect`; every name is shown through ``markup`` (escaped)."""
    console = Console(highlight=False, emoji=False,
                      width=None if sys.stdout.isatty() else 160)
    for doc in docs:
        table = Table(title=f"{markup(doc['file'])}  (license {markup(doc['license'] or 'none')})",
                      title_justify="left")
        for col in ("program", "section", "type", "insns", "linked", "helpers", "maps"):
            table.add_column(col, justify="right" if col in ("insns", "linked") else "left")
        for p in doc["programs"]:
            helpers = ", ".join(f"{h['name']}({h['id']})" for h in p["helpers"]) or "-"
            table.add_row(markup(p["name"]), markup(p["section"]), markup(p["type"]),
                          str(p["insn_count"]), str(p["linked_insn_count"]), markup(helpers),
                          markup(", ".join(p["maps"]) or "-"))
        console.print(table)
        if doc["maps"]:
            mt = Table(show_edge=True)
            for col in ("map", "type", "key", "value", "max_entries", "flags", "section"):
                mt.add_column(col)
            for m in doc["maps"]:
                mt.add_row(markup(m["name"]), markup(m["type"]), str(m["key_size"]),
                           str(m["value_size"]), str(m["max_entries"]), f"0x{m['flags']:x}",
                           markup(m["section"]))
            console.print(mt)
        if source:
            for p in doc["programs"]:
                console.print(Text.assemble("\n", (printable(p["name"]), "bold"),
                                            f" ({printable(p['section'])})"))
                console.out(p["listing"], highlight=False)


def note_default_program(path: str, program: str | None) -> None:
    """On stderr, when no program is named and the object holds others: which program the
    command analyses and which it leaves out, why (``ElfObject.default_note``)."""
    if program is not None:
        return
    note = load(path).default_note()
    if note is not None:
        print(note, file=sys.stderr)
