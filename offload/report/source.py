"""C source files named by a program's line info: where they are, and their line anchors.

``.BTF.ext`` line info names each file as clang saw it (an absolute path on the machine that
built the object, or one relative to where clang ran). ``resolve_source`` looks for it, in
order: the path as given; relative to the object's folder; relative to the project root;
then shorter and shorter trailing parts of the path under both (an object built in another
checkout still finds ``examples/xdp/firewall.c`` here). When nothing is found the report
shows the line texts BTF carries instead (``SourceFile.btf_lines``).

Anchors: the file holding the program's entry function is the *main* file; its lines are
``#L55``. Other files (headers) get ``#<slug>-L12`` with ``slug`` the base name with every
character other than a letter, digit, ``-`` or ``_`` replaced by ``-`` (``common-h-L12``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebpf.loader.program import ProgramDef

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_SLUG = re.compile(r"[^A-Za-z0-9_-]")


def slug(name: str) -> str:
    """An id-safe form of a file's base name: ``common.h`` -> ``common-h``."""
    return _SLUG.sub("-", os.path.basename(name))


def line_anchor(file: str | None, line: int | None, main_file: str | None) -> str | None:
    """The fragment (no ``#``) of a source line: ``L55`` in the main file, else
    ``common-h-L12``; None without a position."""
    if file is None or line is None or line <= 0:  # clang's line 0: no source position
        return None
    return f"L{line}" if file == main_file else f"{slug(file)}-L{line}"


def resolve_source(name: str, object_dir: str | os.PathLike[str],
                   root: str | os.PathLike[str] = PROJECT_ROOT) -> Path | None:
    """The readable file that ``name`` (from line info) refers to, or None."""
    p = Path(name)
    if p.is_absolute() and p.is_file():
        return p
    bases = [Path(object_dir), Path(root)]
    for base in bases:
        if not p.is_absolute() and (base / p).is_file():
            return base / p
    parts = p.parts[1:] if p.is_absolute() else p.parts
    for k in range(1, len(parts) + 1):
        tail = Path(*parts[-k:])
        for base in bases:
            if (base / tail).is_file():
                return base / tail
    return None


@dataclass
class SourceFile:
    """One file a program's line info names: where it was found, its anchor prefix, and the
    lines BTF carries (used when the file itself is missing)."""

    name: str
    resolved: str | None
    main: bool
    slug: str
    btf_lines: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "display": display_path(self.name),
                "resolved": self.resolved, "main": self.main, "slug": self.slug,
                "btf_lines": {str(k): v for k, v in sorted(self.btf_lines.items())}}


def display_name(path: str, program: str) -> str:
    """How a program is named in the report's rows: ``<object stem>.<program>``, the real
    names (the templates escape them; the ``id`` is the file-safe form of it)."""
    return f"{Path(path).stem}.{program}"


def display_path(name: str, root: str | os.PathLike[str] = PROJECT_ROOT) -> str:
    """``name`` relative to the project root when it lies inside it."""
    try:
        return str(Path(name).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return name


def main_file(prog: ProgramDef) -> str | None:
    """The file of the entry function's first line-info entry."""
    entry = prog.functions[0] if prog.functions else None
    first = sorted((s, ln) for s, ln in prog.lines.items()
                   if entry is None or entry.start <= s < entry.start + entry.size)
    if first:
        return first[0][1].file
    return next(iter(prog.lines.values())).file if prog.lines else None


def source_files(prog: ProgramDef, object_path: str | os.PathLike[str]) -> list[SourceFile]:
    """Every file the program's line info names, the main file first."""
    main = main_file(prog)
    by_file: dict[str, dict[int, str]] = {}
    for ln in prog.lines.values():
        by_file.setdefault(ln.file, {})[ln.line] = ln.text
    obj_dir = Path(object_path).resolve().parent
    out = []
    for name in sorted(by_file, key=lambda f: (f != main, f)):
        found = resolve_source(name, obj_dir)
        out.append(SourceFile(name, str(found) if found else None, name == main, slug(name),
                              by_file[name]))
    return out


def read_lines(sf: dict[str, Any]) -> tuple[list[tuple[int, str]], bool]:
    """The lines to show for a ``SourceFile.to_dict()``: ``[(number, text)]`` and whether
    they are the whole file (False: only the lines BTF carries)."""
    if sf.get("resolved"):
        try:
            text = Path(sf["resolved"]).read_text(encoding="utf-8", errors="replace")
            return list(enumerate(text.splitlines(), 1)), True
        except OSError:
            pass
    return sorted((int(k), v) for k, v in sf.get("btf_lines", {}).items()), False
