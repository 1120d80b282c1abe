"""Load an ELF object into the running kernel through libbpf (ctypes over libbpf.so.1).

The kernel's verifier is the oracle for "does this program load": ``load_object`` opens the
object with libbpf, loads every program and map, reports the verdict, the log, the programs and
the maps, and closes the object again. Nothing is pinned and nothing is attached: every fd the
load created is gone when the call returns.

``bpf_permitted`` says whether bpf(2) works here at all (root or CAP_BPF, not blocked by a
seccomp filter or ``kernel.unprivileged_bpf_disabled``); kernel tests skip with its reason.

A verifier rejection is not an exception: it is ``LoadResult(ok=False, log=...)``. Only a
missing or unusable libbpf raises ``KernelError``.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ebpf.errors import KernelError
from ebpf.isa import AluOp, Insn, InsnClass, JmpOp, Source, encode
from ebpf.kernel_enums import PROG_TYPE_IDS, map_type_name

LIBBPF_SONAME = "libbpf.so.1"

# bpf(2) syscall numbers (arch/*/entry/syscalls tables); x86_64 is the one this project runs on.
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_LOAD = 5  # enum bpf_cmd
_PROG_LOAD_ATTR_SIZE = 72  # union bpf_attr up to and including expected_attach_type
_PROG_INFO_SIZE = 256  # zero-filled struct bpf_prog_info buffer; the kernel fills its prefix
_PROG_INFO_XLATED_LEN = 20  # offsetof(struct bpf_prog_info, xlated_prog_len)
_BPF_INSN_SIZE = 8

# enum libbpf_print_level
_LIBBPF_INFO = 1  # WARN 0 and INFO 1 are kept, DEBUG 2 is not

# sizeof(va_list) where va_copy is a plain copy of the object the callback receives a pointer
# to (x86_64: __va_list_tag[1]; aarch64: struct __va_list, passed by reference).
_VA_LIST_SIZE = {"x86_64": 24, "aarch64": 32}

DEFAULT_LOG_SIZE = 4 << 20  # bytes of verifier log kept per program

_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
# libbpf's print callback is process-wide: one load at a time may own it.
_PRINT_LOCK = threading.Lock()


class ProgramInfo(NamedTuple):
    """One program of a loaded (or attempted) object.

    ``insn_cnt`` is the number of instructions the kernel holds after verification
    (xlated_prog_len / 8) when the program loaded, else libbpf's count of the relocated ELF
    instructions.
    """

    name: str
    section: str
    insn_cnt: int


@dataclass
class LoadResult:
    """Verdict of one ``load_object``: ``ok`` is True when every program and map loaded."""

    ok: bool
    log: str
    programs: list[ProgramInfo] = field(default_factory=list)
    maps: list[dict[str, int | str]] = field(default_factory=list)

    def get_map(self, name: str) -> dict[str, int | str] | None:
        """The map called ``name`` (libbpf's name, e.g. 'globals.rodata'), or None."""
        return next((m for m in self.maps if m["name"] == name), None)


def _trivial_xdp_program() -> bytes:
    """``r0 = XDP_PASS; exit``: the smallest program the verifier accepts."""
    return encode(
        [
            Insn(InsnClass.ALU64 | AluOp.MOV | Source.K, dst=0, imm=2),
            Insn(InsnClass.JMP | JmpOp.EXIT),
        ]
    )


def bpf_permitted() -> tuple[bool, str]:
    """Whether bpf(2) BPF_PROG_LOAD works here, and why not as one line when it does not.

    Loads ``r0 = 2; exit`` as an XDP program with the raw syscall (no libbpf involved for the
    load itself) and closes the fd at once; libbpf must also be present, since every other
    kernel operation goes through it.
    """
    try:
        _libbpf()
    except KernelError as exc:
        return False, str(exc)
    machine = platform.machine()
    nr = _SYS_BPF.get(machine)
    if nr is None:
        return False, f"bpf(2) syscall number unknown for architecture {machine!r}"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        return False, f"cannot open the C library: {exc}"
    insns = _trivial_xdp_program()
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(_PROG_LOAD_ATTR_SIZE)
    fields = (
        (0, ctypes.c_uint32, PROG_TYPE_IDS["xdp"]),  # prog_type
        (4, ctypes.c_uint32, len(insns) // _BPF_INSN_SIZE),  # insn_cnt
        (8, ctypes.c_uint64, ctypes.addressof(code)),  # insns
        (16, ctypes.c_uint64, ctypes.addressof(license_)),  # license
    )
    for offset, ctype, value in fields:
        ctype.from_buffer(attr, offset).value = value
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    fd = syscall(ctypes.c_long(nr), ctypes.c_long(_BPF_PROG_LOAD), attr, ctypes.c_uint(len(attr)))
    if fd < 0:
        err = ctypes.get_errno()
        name = errno.errorcode.get(err, str(err))
        hint = {
            errno.EPERM: " (needs root or CAP_BPF+CAP_NET_ADMIN)",
            errno.ENOSYS: " (kernel built without CONFIG_BPF_SYSCALL, or blocked by seccomp)",
        }.get(err, "")
        return False, f"bpf(BPF_PROG_LOAD) failed: {name} {os.strerror(err)}{hint}"
    os.close(fd)
    return True, "bpf(BPF_PROG_LOAD) works"


@functools.cache
def _libbpf() -> ctypes.CDLL:
    """libbpf.so.1 with the prototypes this module calls (raises KernelError if absent)."""
    try:
        lib = ctypes.CDLL(LIBBPF_SONAME, use_errno=True)
    except OSError as exc:
        raise KernelError(f"{LIBBPF_SONAME} not loadable: {exc} (apt-get install libbpf1)") from exc
    vp, cp, i, u32, sz = (
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
        ctypes.c_size_t,
    )
    protos: dict[str, tuple[type | None, list[type]]] = {
        "libbpf_set_print": (vp, [vp]),
        "bpf_object__open_file": (vp, [cp, vp]),
        "bpf_object__load": (i, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__next_program": (vp, [vp, vp]),
        "bpf_object__next_map": (vp, [vp, vp]),
        "bpf_program__name": (cp, [vp]),
        "bpf_program__section_name": (cp, [vp]),
        "bpf_program__insn_cnt": (sz, [vp]),
        "bpf_program__fd": (i, [vp]),
        "bpf_program__set_log_buf": (i, [vp, vp, sz]),
        "bpf_program__set_log_level": (i, [vp, u32]),
        "bpf_map__name": (cp, [vp]),
        "bpf_map__type": (i, [vp]),
        "bpf_map__key_size": (u32, [vp]),
        "bpf_map__value_size": (u32, [vp]),
        "bpf_map__max_entries": (u32, [vp]),
        "bpf_map__map_flags": (u32, [vp]),
        "bpf_obj_get_info_by_fd": (i, [i, vp, ctypes.POINTER(u32)]),
    }
    for name, (restype, argtypes) in protos.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as exc:
            raise KernelError(f"{LIBBPF_SONAME} lacks {name} (need libbpf >= 1.0)") from exc
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


class _LogSink:
    """Collects libbpf's messages through ``libbpf_set_print`` while it is installed."""

    def __init__(self, min_level: int) -> None:
        self.lines: list[str] = []
        self._min_level = min_level
        self._libc = ctypes.CDLL(None)
        self._vsnprintf = self._libc.vsnprintf
        self._vsnprintf.restype = ctypes.c_int
        self._vsnprintf.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_void_p,
        ]
        self._va_size = _VA_LIST_SIZE.get(platform.machine())
        self.callback = _PRINT_FN(self._print)

    def _print(self, level: int, fmt: bytes | None, args: int | None) -> int:
        if level > self._min_level or fmt is None:
            return 0
        try:
            self.lines.append(self._format(fmt, args))
        except Exception:  # never let an exception unwind into libbpf
            self.lines.append(fmt.decode(errors="replace"))
        return 0

    def _format(self, fmt: bytes, args: int | None) -> str:
        """vsnprintf the message, measuring first on a copy of the va_list where we can."""
        if self._va_size is not None and args:
            copy = ctypes.create_string_buffer(ctypes.string_at(args, self._va_size))
            size = self._vsnprintf(None, 0, fmt, ctypes.addressof(copy)) + 1
        else:
            size = 1 << 24  # cannot measure: a buffer no verifier log outgrows in practice
        buf = ctypes.create_string_buffer(max(size, 1))
        self._vsnprintf(buf, len(buf), fmt, args)
        return buf.value.decode(errors="replace")

    def text(self) -> str:
        return "".join(self.lines)


def _iter_objects(next_fn: Callable[[int, int | None], int | None], obj: int) -> Iterator[int]:
    """Walk libbpf's ``bpf_object__next_*`` list of programs or maps."""
    item = next_fn(obj, None)
    while item:
        yield item
        item = next_fn(obj, item)


def _xlated_insn_cnt(lib: ctypes.CDLL, fd: int) -> int | None:
    """Instructions the kernel holds for a loaded program fd, or None if it will not say."""
    info = ctypes.create_string_buffer(_PROG_INFO_SIZE)
    length = ctypes.c_uint32(_PROG_INFO_SIZE)
    if lib.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(length)) != 0:
        return None
    return ctypes.c_uint32.from_buffer(info, _PROG_INFO_XLATED_LEN).value // _BPF_INSN_SIZE


def _map_info(lib: ctypes.CDLL, map_ptr: int) -> dict[str, int | str]:
    type_id = lib.bpf_map__type(map_ptr)
    return {
        "name": (lib.bpf_map__name(map_ptr) or b"").decode(),
        "type": map_type_name(type_id) or f"type_{type_id}",
        "type_id": type_id,
        "key_size": lib.bpf_map__key_size(map_ptr),
        "value_size": lib.bpf_map__value_size(map_ptr),
        "max_entries": lib.bpf_map__max_entries(map_ptr),
        "map_flags": lib.bpf_map__map_flags(map_ptr),
    }


def load_object(
    path: str | os.PathLike[str], *, log_level: int = 0, log_size: int = DEFAULT_LOG_SIZE,
    open_only: bool = False,
) -> LoadResult:
    """Load every program and map of the ELF object at ``path``; pin nothing, attach nothing.

    ``log`` holds libbpf's warnings and info messages and the verifier log: with ``log_level``
    0 (the default) only for a rejected program (libbpf reloads it at level 1 to get the
    reason); with 1 or 2 for every program, 4 (BPF_LOG_STATS) for the verifier's statistics
    only, each kept in a buffer of ``log_size`` bytes per program. At level 1 or 2 a log that
    outgrows ``log_size`` makes the kernel refuse the load (ENOSPC), so ``ok`` is False.
    With ``open_only`` libbpf only parses the object (no bpf(2) calls): what libbpf reads of
    its programs and maps, usable as an oracle where bpf(2) is not permitted.
    """
    lib = _libbpf()
    sink = _LogSink(_LIBBPF_INFO)
    log_bufs: dict[str, ctypes.Array[ctypes.c_char]] = {}
    programs: list[ProgramInfo] = []
    maps: list[dict[str, int | str]] = []
    ok = False
    with _PRINT_LOCK:
        old_print = lib.libbpf_set_print(ctypes.cast(sink.callback, ctypes.c_void_p))
        obj = None
        try:
            obj = lib.bpf_object__open_file(os.fsencode(Path(path)), None)
            if not obj:
                err = ctypes.get_errno() or errno.EINVAL
                sink.lines.append(f"cannot open {path}: {os.strerror(err)}\n")
            else:
                prog_ptrs = list(_iter_objects(lib.bpf_object__next_program, obj))
                # At level 0 libbpf retries a rejected program at level 1 in a buffer of its
                # own, growing it as needed, and prints the log through the sink.
                for prog in prog_ptrs if log_level else ():
                    name = lib.bpf_program__name(prog).decode()
                    buf = ctypes.create_string_buffer(log_size)
                    log_bufs[name] = buf
                    lib.bpf_program__set_log_buf(prog, buf, log_size)
                    lib.bpf_program__set_log_level(prog, log_level)
                err = 0 if open_only else lib.bpf_object__load(obj)
                ok = err == 0
                if not ok:
                    sink.lines.append(f"bpf_object__load: {os.strerror(-err)}\n")
                for prog in prog_ptrs:
                    fd = lib.bpf_program__fd(prog)
                    count = _xlated_insn_cnt(lib, fd) if fd >= 0 else None
                    programs.append(
                        ProgramInfo(
                            lib.bpf_program__name(prog).decode(),
                            lib.bpf_program__section_name(prog).decode(),
                            count if count is not None else lib.bpf_program__insn_cnt(prog),
                        )
                    )
                maps = [_map_info(lib, m) for m in _iter_objects(lib.bpf_object__next_map, obj)]
        finally:
            if obj:
                lib.bpf_object__close(obj)
            lib.libbpf_set_print(old_print)
    log = sink.text()
    for name, buf in log_bufs.items():
        text = buf.value.decode(errors="replace")
        if text:
            log += f"prog '{name}': verifier log\n{text}"
            if not text.endswith("\n"):
                log += "\n"
    return LoadResult(ok=ok, log=log, programs=programs, maps=maps)
