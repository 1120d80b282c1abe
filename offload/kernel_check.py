"""Does the running kernel's verifier accept the program: the check's kernel opinion.

``kernel_verdict(path, program)`` loads the object with libbpf (again with only
``program``, ``bpf_program__set_autoload`` off for the others, when a neighbour is what the
kernel refuses: that does not count against ``program``), through ``ebpf.kernel.load.open_unpinned``: no map pinned or reused, nothing attached; every
fd dies with the object before the call returns. When the verifier refuses it, the result
names the rejecting instruction, its C line (the log's ``; ... @ file:line``) and the
verifier's message lines, the ones between the last instruction it printed and its
``processed N insns`` summary.

Where bpf(2) is not permitted (``bpf_permitted``), or a map is sized by its loader
(max_entries 0: the kernel refuses to create it, which says nothing about the code), the
result says why the kernel was not asked; the rest of ``check`` still runs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from dataclasses import dataclass
from typing import Any

from ebpf.errors import KernelError
from ebpf.kernel.load import (
    bpf_permitted,
    collect_log,
    iter_objects,
    libbpf,
    libbpf_log_capture,
    open_unpinned,
)

_INSN = re.compile(r"^(\d+): \(([0-9a-f]{2})\)")
_SRC = re.compile(r"^; .* @ ([^:\s]+):(\d+)$")


@dataclass(frozen=True)
class KernelVerdict:
    """``loaded`` True / False, or None when the kernel was not asked (``why``);
    ``verifier``: the refusal is the verifier's, on the code (not a name, map or BTF the
    kernel refused before verifying)."""

    loaded: bool | None
    why: str = ""
    insn: int | None = None
    file: str | None = None
    line: int | None = None
    message: str = ""
    verifier: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "why": self.why, "insn": self.insn, "file": self.file,
                "line": self.line, "message": self.message, "verifier": self.verifier}


def kernel_verdict(path: str | os.PathLike[str], program: str,
                   loader_sized: list[str] | tuple[str, ...] = ()) -> KernelVerdict:
    """Load ``program`` of the object at ``path`` alone; see the module docstring.

    ``loader_sized`` names the maps whose max_entries the ELF leaves to the loader.
    """
    if loader_sized:
        return KernelVerdict(None, f"not loaded: map '{loader_sized[0]}' is sized by its "
                                   f"loader (max_entries 0 in the ELF)")
    ok, reason = bpf_permitted()
    if not ok:
        return KernelVerdict(None, f"not loaded: {reason}")
    # every program first (a prog_array's initial slots name its neighbours); when a
    # neighbour is what the kernel refuses, ours alone
    err, log = _load(path, program, alone=False)
    if err and f"prog '{program}': -- BEGIN PROG LOAD LOG --" not in log:
        err, log = _load(path, program, alone=True)
    if err == 0:
        return KernelVerdict(True, "the kernel verifier accepts it")
    return rejection(log, program, -err)


def _load(path: str | os.PathLike[str], program: str, alone: bool) -> tuple[int, str]:
    """(bpf_object__load's result, libbpf's log) with ``program`` loaded (``alone``: only it)."""
    lib = libbpf()
    with libbpf_log_capture() as sink:
        obj = open_unpinned(lib, path)
        if not obj:
            err = ctypes.get_errno() or errno.EINVAL
            raise KernelError(f"{os.fspath(path)}: libbpf cannot open it: {os.strerror(err)}")
        try:
            found = False
            for prog in iter_objects(lib.bpf_object__next_program, obj):
                mine = lib.bpf_program__name(prog).decode(errors="replace") == program
                found |= mine
                if alone:
                    lib.bpf_program__set_autoload(prog, mine)
            if not found:
                raise KernelError(f"{os.fspath(path)}: libbpf sees no program '{program}'")
            err = lib.bpf_object__load(obj)
        finally:
            lib.bpf_object__close(obj)
    return err, collect_log(sink, {})


def rejection(log: str, program: str, err: int) -> KernelVerdict:
    """The rejecting instruction, its C line and the verifier's message from libbpf's log."""
    lines = log.splitlines()
    mark = f"prog '{program}': -- BEGIN PROG LOAD LOG --"
    begin = next((i for i, t in enumerate(lines) if mark in t), None)
    if begin is None:  # refused before the verifier ran (a map, BTF, the license...)
        cause = [t.removeprefix("libbpf: ") for t in lines if t.startswith("libbpf: ")]
        text = cause[-2] if len(cause) > 1 else cause[-1] if cause else os.strerror(err)
        return KernelVerdict(False, "the kernel refuses to load it", message=text.strip())
    end = next((i for i in range(begin + 1, len(lines))
                if "-- END PROG LOAD LOG --" in lines[i]), len(lines))
    body = [t for t in lines[begin + 1:end] if t.strip()]
    stop = next((i for i, t in enumerate(body) if t.startswith("processed ")), len(body))
    body = body[:stop]
    last = max((i for i, t in enumerate(body) if _INSN.match(t)), default=-1)
    message = [t.strip() for t in body[last + 1:]] or [os.strerror(err)]
    insn = file = line = None
    if last >= 0:
        insn = int(_INSN.match(body[last]).group(1))  # type: ignore[union-attr]
        for t in reversed(body[:last]):
            src = _SRC.match(t)
            if src:
                file, line = src.group(1), int(src.group(2))
                break
    return KernelVerdict(False, "the kernel verifier rejects it", insn, file, line,
                         "; ".join(message), verifier=True)
