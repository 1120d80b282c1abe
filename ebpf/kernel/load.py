"""Load an ELF object into the running kernel through libbpf (ctypes over libbpf.so.1).

The kernel's verifier is the oracle for "does this program load": ``load_object`` opens the
object with libbpf, loads every program and map, reports the verdict, the log, the programs and
the maps, and closes the object again. Nothing is pinned and nothing is attached: every fd the
load created is gone when the call returns. Every open goes through ``open_unpinned``, which
clears the maps' pin paths, so a pinned map of a running program is never reused or written.

``bpf_permitted`` says whether bpf(2) works here at all (root or CAP_BPF, not blocked by a
seccomp filter or ``kernel.unprivileged_bpf_disabled``); kernel tests skip with its reason.

This module is also the libbpf layer ``ebpf.kernel.bridge`` builds on: ``libbpf()`` returns the library
with the prototypes of every function either module calls, ``libbpf_log_capture()`` routes
libbpf's messages into a ``LogSink`` while an object is opened and loaded, and the ctypes
layouts of the structs passed by pointer (``ProgInfoStruct``, ``MapInfoStruct``,
``TestRunOpts``) are declared here once.

A verifier rejection is not an exception: it is ``LoadResult(ok=False, log=...)``. Only a
missing or unusable libbpf raises ``KernelError``.
"""

from __future__ import annotations

import contextlib
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

from ebpf.code.isa import AluOp, Insn, InsnClass, JmpOp, Source, encode
from ebpf.errors import KernelError
from ebpf.kernel_enums import PROG_TYPE_IDS, map_type_name

LIBBPF_SONAME = "libbpf.so.1"

# bpf(2) syscall numbers (arch/*/entry/syscalls tables); x86_64 is the one this project runs on.
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_LOAD = 5  # enum bpf_cmd
_PROG_LOAD_ATTR_SIZE = 72  # union bpf_attr up to and including expected_attach_type
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


class ProgInfoStruct(ctypes.Structure):
    """The prefix of struct bpf_prog_info (include/uapi/linux/bpf.h) up to verified_insns;
    pass its size as info_len (the kernel fills what it has of that prefix)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32),
        ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * 16),
        ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32),  # a 1-bit field and 31 bits of padding
        ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32),
        ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64),
        ("jited_func_lens", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64),
        ("nr_func_info", ctypes.c_uint32),
        ("nr_line_info", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64),
        ("jited_line_info", ctypes.c_uint64),
        ("nr_jited_line_info", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("jited_line_info_rec_size", ctypes.c_uint32),
        ("nr_prog_tags", ctypes.c_uint32),
        ("prog_tags", ctypes.c_uint64),
        ("run_time_ns", ctypes.c_uint64),
        ("run_cnt", ctypes.c_uint64),
        ("recursion_misses", ctypes.c_uint64),
        ("verified_insns", ctypes.c_uint32),
    ]


assert ProgInfoStruct.verified_insns.offset == 216  # offsetof in the 6.x UAPI header


class MapInfoStruct(ctypes.Structure):
    """The prefix of struct bpf_map_info up to map_flags."""

    _fields_ = [(f, ctypes.c_uint32) for f in
                ("type", "id", "key_size", "value_size", "max_entries", "map_flags")]


class TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts of libbpf 1.1 (/usr/include/bpf/bpf.h); ``sz`` first."""

    __test__ = False  # not a pytest test class despite the name

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


assert ctypes.sizeof(TestRunOpts) == 80


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
        libbpf()
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
def libbpf() -> ctypes.CDLL:
    """libbpf.so.1 with the prototypes this module and ebpf.kernel.bridge call (KernelError if absent).

    Low-level calls (``bpf_map_*``, ``bpf_prog_test_run_opts``, ``bpf_obj_get_info_by_fd``)
    return 0 or a negative errno (libbpf 1.x); ``bpf_object__open_file`` returns NULL and sets
    errno.
    """
    try:
        lib = ctypes.CDLL(LIBBPF_SONAME, use_errno=True)
    except OSError as exc:
        raise KernelError(f"{LIBBPF_SONAME} not loadable: {exc} (apt-get install libbpf1)") from exc
    vp, cp, i, u32, u64, sz = (
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
        ctypes.c_uint64,
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
        "bpf_map__set_pin_path": (i, [vp, cp]),
        "bpf_map__pin_path": (cp, [vp]),
        "bpf_obj_get_info_by_fd": (i, [i, vp, ctypes.POINTER(u32)]),
        # used by ebpf.kernel
        "bpf_object__find_program_by_name": (vp, [vp, cp]),
        "bpf_object__find_map_by_name": (vp, [vp, cp]),
        "bpf_map__fd": (i, [vp]),
        "bpf_map__is_internal": (ctypes.c_bool, [vp]),
        "bpf_map__set_initial_value": (i, [vp, vp, sz]),
        "bpf_map_lookup_elem": (i, [i, vp, vp]),
        "bpf_map_update_elem": (i, [i, vp, vp, u64]),
        "bpf_map_delete_elem": (i, [i, vp]),
        "bpf_map_get_next_key": (i, [i, vp, vp]),
        "bpf_map_lookup_batch": (i, [i, vp, vp, vp, vp, ctypes.POINTER(u32), vp]),
        "bpf_prog_test_run_opts": (i, [i, vp]),
        "libbpf_num_possible_cpus": (i, []),
    }
    for name, (restype, argtypes) in protos.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as exc:
            raise KernelError(f"{LIBBPF_SONAME} lacks {name} (need libbpf >= 1.0)") from exc
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


class LogSink:
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


@contextlib.contextmanager
def libbpf_log_capture(min_level: int = _LIBBPF_INFO) -> Iterator[LogSink]:
    """Route libbpf's messages (WARN and INFO by default) into a ``LogSink`` for the block.

    libbpf's print callback is process-wide, so the block holds a lock: one open / load at a
    time. The previous callback is restored on the way out.
    """
    lib = libbpf()
    sink = LogSink(min_level)
    with _PRINT_LOCK:
        old_print = lib.libbpf_set_print(ctypes.cast(sink.callback, ctypes.c_void_p))
        try:
            yield sink
        finally:
            lib.libbpf_set_print(old_print)


def iter_objects(next_fn: Callable[[int, int | None], int | None], obj: int) -> Iterator[int]:
    """Walk libbpf's ``bpf_object__next_*`` list of programs or maps."""
    item = next_fn(obj, None)
    while item:
        yield item
        item = next_fn(obj, item)


def open_unpinned(lib: ctypes.CDLL, path: str | os.PathLike[str]) -> int | None:
    """``bpf_object__open_file`` with every map's pin path cleared; None if libbpf cannot open it.

    libbpf honours ``__uint(pinning, LIBBPF_PIN_BY_NAME)``: at load it would reuse a map
    already pinned under /sys/fs/bpf by that name (and our state file would then overwrite a
    running program's map) and pin the maps it creates. Clearing the pin path after open and
    before load turns both off: every map is created fresh and dies with the object.
    """
    obj = lib.bpf_object__open_file(os.fsencode(Path(path)), None)
    if not obj:
        return None
    for map_ptr in iter_objects(lib.bpf_object__next_map, obj):
        err = lib.bpf_map__set_pin_path(map_ptr, None)
        if err or lib.bpf_map__pin_path(map_ptr) is not None:
            name = (lib.bpf_map__name(map_ptr) or b"?").decode(errors="replace")
            lib.bpf_object__close(obj)
            raise KernelError(f"{path}: map '{name}': cannot clear its pin path "
                              f"({os.strerror(-err) if err else 'still set'}); not loading")
    return obj


def _xlated_insn_cnt(lib: ctypes.CDLL, fd: int) -> int | None:
    """Instructions the kernel holds for a loaded program fd, or None if it will not say."""
    info = ProgInfoStruct()
    length = ctypes.c_uint32(ctypes.sizeof(info))
    if lib.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(length)) != 0:
        return None
    return info.xlated_prog_len // _BPF_INSN_SIZE


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
    lib = libbpf()
    programs: list[ProgramInfo] = []
    maps: list[dict[str, int | str]] = []
    ok = False
    with libbpf_log_capture() as sink:
        obj = open_unpinned(lib, path)
        if not obj:
            err = ctypes.get_errno() or errno.EINVAL
            sink.lines.append(f"cannot open {path}: {os.strerror(err)}\n")
            return LoadResult(ok=False, log=sink.text())
        try:
            prog_ptrs = list(iter_objects(lib.bpf_object__next_program, obj))
            log_bufs = set_log_bufs(lib, prog_ptrs, log_level, log_size)
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
            maps = [_map_info(lib, m) for m in iter_objects(lib.bpf_object__next_map, obj)]
        finally:
            lib.bpf_object__close(obj)
    return LoadResult(ok=ok, log=collect_log(sink, log_bufs), programs=programs, maps=maps)


def set_log_bufs(lib: ctypes.CDLL, prog_ptrs: list[int], log_level: int,
                 log_size: int) -> dict[str, ctypes.Array[ctypes.c_char]]:
    """Give every program a verifier log buffer of ``log_size`` bytes at ``log_level``.

    Nothing at level 0: libbpf then retries a rejected program at level 1 in a buffer of its
    own, growing it as needed, and prints that log through the print callback. The buffers
    must stay alive until the load returns.
    """
    bufs: dict[str, ctypes.Array[ctypes.c_char]] = {}
    for prog in prog_ptrs if log_level else ():
        buf = ctypes.create_string_buffer(log_size)
        bufs[lib.bpf_program__name(prog).decode()] = buf
        lib.bpf_program__set_log_buf(prog, buf, log_size)
        lib.bpf_program__set_log_level(prog, log_level)
    return bufs


def collect_log(sink: LogSink, log_bufs: dict[str, ctypes.Array[ctypes.c_char]]) -> str:
    """libbpf's messages, then each program's verifier log buffer under a heading."""
    log = sink.text()
    for name, buf in log_bufs.items():
        text = buf.value.decode(errors="replace")
        if text:
            log += f"prog '{name}': verifier log\n{text}"
            if not text.endswith("\n"):
                log += "\n"
    return log
