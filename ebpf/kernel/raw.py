"""Load our own linked programs into the kernel through bpf(2), without libbpf and without BTF.

libbpf loads an ELF file; it cannot load instructions we changed (``ebpf.code.rewrite``), since
the object's BTF func and line info would no longer match them. ``RawKernelObject(obj)``
takes an ``ElfObject`` (``ebpf.loader.elf.load``, possibly rewritten) and does what
``bpf_object__load`` does, with raw bpf(2) calls (ctypes ``syscall(SYS_bpf, cmd, &attr,
sizeof attr)``):

1. every map of ``obj.maps`` is created with BPF_MAP_CREATE, named as libbpf names it (at
   most 15 characters, anything but ``[A-Za-z0-9_.]`` replaced by ``_``); a map-in-map gets
   the fd of a template map created from its inner definition, closed again right after;
2. global-data maps get their initial bytes (or the state document's) with
   BPF_MAP_UPDATE_ELEM, then ``.rodata`` maps (BPF_F_RDONLY_PROG) are frozen with
   BPF_MAP_FREEZE, before any program is loaded, so the verifier sees constants as it does
   under libbpf; map-in-map slots named in the object are filled;
3. every program is loaded with BPF_PROG_LOAD: no BTF, ``fd_array`` holding the map fds in
   ``obj.maps`` order so the linker's ``lddw`` src=5 (map by index) and src=6 (value by
   index) resolve, expected_attach_type and BPF_F_XDP_HAS_FRAGS from the section name,
   the object's license; a rejected program is loaded again at log level 1 for the log;
4. prog_array slots named in the object get the program fds; then the rest of the state
   document is applied, as ``KernelObject`` does.

Everything after the load (map operations, state documents, test runs, program info) is
``KernelObject``'s, which needs nothing but fds. Nothing is attached and nothing is pinned;
``close()`` closes every fd.

union bpf_attr layouts, checked against /usr/include/linux/bpf.h with offsetof:

- BPF_MAP_CREATE: map_type 0, key_size 4, value_size 8, max_entries 12, map_flags 16,
  inner_map_fd 20, numa_node 24, map_name 28 (16 bytes), map_ifindex 44, btf_fd 48,
  btf_key_type_id 52, btf_value_type_id 56, btf_vmlinux_value_type_id 60, map_extra 64;
- BPF_MAP_*_ELEM / BPF_MAP_FREEZE: map_fd 0, key 8, value 16, flags 24;
- BPF_PROG_LOAD: prog_type 0, insn_cnt 4, insns 8, license 16, log_level 24, log_size 28,
  log_buf 32, kern_version 40, prog_flags 44, prog_name 48 (16 bytes), prog_ifindex 64,
  expected_attach_type 68, prog_btf_fd 72, func_info_rec_size 76, func_info 80,
  func_info_cnt 88, line_info_rec_size 92, line_info 96, line_info_cnt 104,
  attach_btf_id 108, attach_prog_fd 112, core_relo_cnt 116, fd_array 120, core_relos 128,
  core_relo_rec_size 136; 144 bytes passed (the kernel takes a shorter attr than its own
  as zero-extended).
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import functools
import os
import platform
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ebpf.code.isa import LDDW_OPCODE, AluOp, Insn, InsnClass, JmpOp, PseudoSrc, Source, encode
from ebpf.errors import KernelError
from ebpf.kernel.bridge import (
    KernelObject,
    StatePath,
    _last_meaningful_line,
    _Map,
)
from ebpf.kernel.load import _SYS_BPF, DEFAULT_LOG_SIZE
from ebpf.kernel.results import KernelLoadError, errno_text
from ebpf.kernel_enums import PROG_TYPE_IDS
from ebpf.loader.program import ElfObject, MapDef, ProgramDef
from ebpf.maps.state import read_state

__all__ = ["ATTACH_TYPE_IDS", "RawKernelObject", "empty_xdp_object", "kernel_name"]

# enum bpf_cmd
BPF_MAP_CREATE = 0
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_MAP_FREEZE = 22

BPF_OBJ_NAME_LEN = 16
BPF_F_RDONLY_PROG = 1 << 7  # map_flags
BPF_F_XDP_HAS_FRAGS = 1 << 5  # prog_flags

# enum bpf_attach_type, lower-cased without BPF_ (ebpf.loader.sections names them so). 0-43 as in
# the 6.1 UAPI header; struct_ops (6.3), netfilter (6.4), tcx_* (6.6) from later headers.
ATTACH_TYPE_NAMES: tuple[str, ...] = (
    "cgroup_inet_ingress", "cgroup_inet_egress", "cgroup_inet_sock_create", "cgroup_sock_ops",
    "sk_skb_stream_parser", "sk_skb_stream_verdict", "cgroup_device", "sk_msg_verdict",
    "cgroup_inet4_bind", "cgroup_inet6_bind", "cgroup_inet4_connect", "cgroup_inet6_connect",
    "cgroup_inet4_post_bind", "cgroup_inet6_post_bind", "cgroup_udp4_sendmsg",
    "cgroup_udp6_sendmsg", "lirc_mode2", "flow_dissector", "cgroup_sysctl",
    "cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg", "cgroup_getsockopt", "cgroup_setsockopt",
    "trace_raw_tp", "trace_fentry", "trace_fexit", "modify_return", "lsm_mac", "trace_iter",
    "cgroup_inet4_getpeername", "cgroup_inet6_getpeername", "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname", "xdp_devmap", "cgroup_inet_sock_release", "xdp_cpumap",
    "sk_lookup", "xdp", "sk_skb_verdict", "sk_reuseport_select",
    "sk_reuseport_select_or_migrate", "perf_event", "trace_kprobe_multi", "lsm_cgroup",
    "struct_ops", "netfilter", "tcx_ingress", "tcx_egress",
)
ATTACH_TYPE_IDS: dict[str, int] = {name: i for i, name in enumerate(ATTACH_TYPE_NAMES)}

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def empty_xdp_object(verdict: int = 1) -> ElfObject:
    """An object with one XDP program, ``empty``: ``r0 = verdict; exit`` (XDP_DROP by
    default). Its BPF_PROG_TEST_RUN time is the harness's own (timer, context set-up, the
    dispatcher), which a program's cost must not include."""
    from ebpf.loader.program import Function

    insns = [Insn(InsnClass.ALU64 | AluOp.MOV | Source.K, dst=0, imm=verdict),
             Insn(InsnClass.JMP | JmpOp.EXIT)]
    prog = ProgramDef(name="empty", section="xdp", prog_type="xdp", insns=insns,
                      functions=[Function("empty", 0, 2, "xdp")], lines={}, map_indices=[],
                      attach_type="xdp", own_slots=2)
    return ElfObject(path="<empty xdp program>", programs=[prog], maps=[], license="GPL")


class MapCreateAttr(ctypes.Structure):
    """union bpf_attr for BPF_MAP_CREATE, up to map_extra."""

    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("map_ifindex", ctypes.c_uint32),
        ("btf_fd", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
    ]


class MapElemAttr(ctypes.Structure):
    """union bpf_attr for BPF_MAP_*_ELEM and BPF_MAP_FREEZE."""

    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class ProgLoadAttr(ctypes.Structure):
    """union bpf_attr for BPF_PROG_LOAD, up to core_relo_rec_size."""

    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
        ("prog_btf_fd", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64),
        ("func_info_cnt", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64),
        ("line_info_cnt", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
        ("attach_prog_fd", ctypes.c_uint32),
        ("core_relo_cnt", ctypes.c_uint32),
        ("fd_array", ctypes.c_uint64),
        ("core_relos", ctypes.c_uint64),
        ("core_relo_rec_size", ctypes.c_uint32),
    ]


# offsetof(union bpf_attr, ...) in include/uapi/linux/bpf.h
assert (MapCreateAttr.inner_map_fd.offset, MapCreateAttr.map_name.offset,
        MapCreateAttr.map_extra.offset, ctypes.sizeof(MapCreateAttr)) == (20, 28, 64, 72)
assert (MapElemAttr.key.offset, MapElemAttr.flags.offset, ctypes.sizeof(MapElemAttr)) == (
    8, 24, 32)
assert (ProgLoadAttr.log_level.offset, ProgLoadAttr.prog_flags.offset,
        ProgLoadAttr.prog_name.offset, ProgLoadAttr.expected_attach_type.offset,
        ProgLoadAttr.func_info.offset, ProgLoadAttr.line_info_cnt.offset,
        ProgLoadAttr.fd_array.offset, ProgLoadAttr.core_relo_rec_size.offset,
        ctypes.sizeof(ProgLoadAttr)) == (24, 44, 48, 68, 80, 104, 120, 136, 144)


class _BpfError(Exception):
    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.errno = err


@functools.cache
def _syscall() -> tuple[Any, int]:
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise KernelError(f"bpf(2) syscall number unknown for {platform.machine()!r}")
    fn = ctypes.CDLL(None, use_errno=True).syscall
    fn.restype = ctypes.c_long
    return fn, nr


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(cmd, &attr, sizeof attr): the result (an fd or 0), or _BpfError with the errno."""
    fn, nr = _syscall()
    ret = fn(ctypes.c_long(nr), ctypes.c_long(cmd), ctypes.byref(attr),
             ctypes.c_uint(ctypes.sizeof(attr)))
    if ret < 0:
        raise _BpfError(ctypes.get_errno() or errno_mod.EINVAL)
    return int(ret)


def kernel_name(name: str) -> str:
    """A map or program name as libbpf gives it to the kernel: at most 15 characters,
    anything the kernel refuses (not alphanumeric, ``_`` or ``.``) replaced by ``_``."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "_"
                   for c in name[: BPF_OBJ_NAME_LEN - 1])


def _update_elem(fd: int, key: bytes, value: bytes) -> None:
    kbuf = ctypes.create_string_buffer(key, max(len(key), 1))
    vbuf = ctypes.create_string_buffer(value, max(len(value), 1))
    _bpf(BPF_MAP_UPDATE_ELEM, MapElemAttr(map_fd=fd, key=ctypes.addressof(kbuf),
                                          value=ctypes.addressof(vbuf), flags=0))


class RawKernelObject(KernelObject):
    """An ``ElfObject`` loaded through bpf(2) without BTF, until ``close()``.

    ``obj`` is an ElfObject (or the path of an ELF file, loaded with ``ebpf.loader.elf.load``);
    ``programs`` names the programs to load (all when None; prog_array slots naming one that
    is not loaded stay empty). ``state`` as for ``KernelObject``: global-data maps take it
    before their initial write and freeze, the other maps after the load. ``log_level``
    (1, 2 or 4 for statistics) keeps every program's verifier log in ``log``; at 0 only a
    rejected program is loaded again at level 1 for its log.

    Same interface as ``KernelObject`` (prog_fd, map_fd, program_names, map_names, update,
    lookup, delete, items, load_state, dump_state, test_run, prog_info, close, ``with``);
    ``elf`` is the object that was loaded. Raises KernelError when bpf(2) is not usable,
    KernelLoadError (one line naming the program or map and the kernel's reason; ``.log``
    the verifier log) when something does not load.
    """

    def __init__(self, obj: ElfObject | str | os.PathLike[str], *,
                 programs: Iterable[str] | None = None,
                 state: Mapping[str, Any] | StatePath | None = None,
                 log_level: int = 0, log_size: int = DEFAULT_LOG_SIZE) -> None:
        if not isinstance(obj, ElfObject):
            from ebpf.loader.elf import load

            obj = load(obj)
        self.elf = obj
        self._selected = self._select_programs(obj, programs)
        self._map_fds: list[int] = []  # in obj.maps order: the fd_array
        self._map_index = {m.name: i for i, m in enumerate(obj.maps)}
        self._open = False
        super().__init__(obj.path, state=state, log_level=log_level, log_size=log_size)

    @staticmethod
    def _select_programs(obj: ElfObject, names: Iterable[str] | None) -> list[ProgramDef]:
        if names is None:
            return list(obj.programs)
        wanted = list(names)
        have = {p.name for p in obj.programs}
        for name in wanted:
            if name not in have:
                known = ", ".join(sorted(have)) or "none"
                raise KernelError(f"{obj.path}: no program named '{name}' (have: {known})")
        return [p for p in obj.programs if p.name in wanted]

    # -- hooks of KernelObject ---------------------------------------------------------------
    def _open_and_load(self, state: Mapping[str, Any] | StatePath | None, log_level: int,
                       log_size: int) -> tuple[str, list[tuple[_Map, list[Any]]]] | None:
        self._open = True
        obj = self.elf
        for defn in obj.maps:
            if defn.name in self._maps:
                raise KernelLoadError(f"{self.path}: two maps named '{defn.name}'")
            self._maps[defn.name] = _Map(0, defn, defn.is_global_data)
        self._progs = {p.name: -1 for p in self._selected}  # fds once loaded
        pending = None
        initial: dict[str, bytes] = {}
        if state is not None:
            source, doc = read_state(state)
            plans = self._plan(source, doc)
            for m, entries in plans:
                if m.internal:
                    initial[m.name] = self._initial_value(source, m, entries)
            pending = (source, [(m, e) for m, e in plans if not m.internal])
        for defn in obj.maps:
            self._map_fds.append(self._create_map(defn))
        for index, defn in enumerate(obj.maps):
            if defn.is_global_data:
                self._populate_global(index, defn, initial.get(defn.name))
        for index, defn in enumerate(obj.maps):
            if defn.values and defn.type_name in ("array_of_maps", "hash_of_maps"):
                self._fill_slots(index, defn, self._inner_fd)
        logs = []
        for prog in self._selected:
            fd, log = self._load_program(prog, log_level, log_size)
            self._progs[prog.name] = fd
            if log:
                logs.append(f"prog '{prog.name}': verifier log\n{log}"
                            + ("" if log.endswith("\n") else "\n"))
        self.log = "".join(logs)
        for index, defn in enumerate(obj.maps):
            if defn.values and defn.type_name == "prog_array":
                self._fill_slots(index, defn, self._prog_slot_fd)
        return pending

    def _program_fd(self, name: str) -> int:
        return self._progs[name]

    def _map_fd(self, m: _Map) -> int:
        return self._map_fds[self._map_index[m.name]]

    @property
    def closed(self) -> bool:
        return not getattr(self, "_open", False)

    def close(self) -> None:
        """Unload: close every program and map fd. Safe to call twice."""
        self._open = False
        progs = getattr(self, "_progs", {})
        fds = [fd for fd in progs.values() if isinstance(fd, int) and fd >= 0]
        fds += getattr(self, "_map_fds", [])
        self._progs, self._maps, self._map_fds = {}, {}, []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- maps ------------------------------------------------------------------------------
    def _map_attr(self, defn: MapDef) -> MapCreateAttr:
        """The BPF_MAP_CREATE attr of ``defn``, with libbpf's adjustments."""
        key_size, value_size, max_entries = defn.key_size, defn.value_size, defn.max_entries
        kind = defn.type_name
        if kind == "perf_event_array":
            key_size, value_size = key_size or 4, value_size or 4
            max_entries = max_entries or self.num_possible_cpus
        elif kind in ("ringbuf", "user_ringbuf"):
            size = _PAGE_SIZE
            while size < max_entries:  # a power-of-2 multiple of the page size
                size *= 2
            max_entries = size
        return MapCreateAttr(map_type=defn.type, key_size=key_size, value_size=value_size,
                             max_entries=max_entries, map_flags=defn.flags,
                             map_name=kernel_name(defn.name).encode())

    def _create_map(self, defn: MapDef) -> int:
        """Create ``defn`` (a map-in-map from its inner template); returns the fd."""
        attr = self._map_attr(defn)
        template = -1
        try:
            if defn.type_name in ("array_of_maps", "hash_of_maps"):
                if defn.inner is None:
                    raise KernelLoadError(f"{self.path}: map '{defn.name}': a {defn.type_name} "
                                          "needs an inner map definition (BTF __array(values))")
                template = self._create_map(defn.inner)
                attr.inner_map_fd = template
            try:
                return _bpf(BPF_MAP_CREATE, attr)
            except _BpfError as exc:
                raise KernelLoadError(
                    f"{self.path}: map '{defn.name}' ({defn.type_name}, key {attr.key_size}, "
                    f"value {attr.value_size}, max_entries {attr.max_entries}, flags "
                    f"0x{attr.map_flags:x}): BPF_MAP_CREATE failed: {errno_text(exc.errno)}"
                ) from None
        finally:
            if template >= 0:
                os.close(template)

    def _populate_global(self, index: int, defn: MapDef, data: bytes | None) -> None:
        """Write a global-data map's contents, then freeze it if it is read-only."""
        fd = self._map_fds[index]
        data = data if data is not None else (defn.initial or bytes(defn.value_size))
        where = f"{self.path}: map '{defn.name}'"
        try:
            _update_elem(fd, bytes(4), data.ljust(defn.value_size, b"\0"))
        except _BpfError as exc:
            raise KernelLoadError(f"{where}: initial value: BPF_MAP_UPDATE_ELEM failed: "
                                  f"{errno_text(exc.errno)}") from None
        if defn.flags & BPF_F_RDONLY_PROG:
            try:
                _bpf(BPF_MAP_FREEZE, MapElemAttr(map_fd=fd))
            except _BpfError as exc:
                raise KernelLoadError(f"{where}: BPF_MAP_FREEZE failed: "
                                      f"{errno_text(exc.errno)}") from None

    def _inner_fd(self, defn: MapDef, slot: int, name: str) -> int | None:
        if name in self._map_index:
            return self._map_fds[self._map_index[name]]
        raise KernelLoadError(f"{self.path}: map '{defn.name}', slot {slot}: no map named "
                              f"'{name}'")

    def _prog_slot_fd(self, defn: MapDef, slot: int, name: str) -> int | None:
        if name in self._progs:
            return self._progs[name]
        if any(p.name == name for p in self.elf.programs):
            return None  # not selected for loading: the slot stays empty
        raise KernelLoadError(f"{self.path}: map '{defn.name}', slot {slot}: no program named "
                              f"'{name}'")

    def _fill_slots(self, index: int, defn: MapDef,
                    fd_of: Callable[[MapDef, int, str], int | None]) -> None:
        """Set the fd slots the object initialises (``MapDef.values``)."""
        for slot, name in sorted(defn.values.items()):
            fd = fd_of(defn, slot, name)
            if fd is None:
                continue
            try:
                _update_elem(self._map_fds[index], slot.to_bytes(4, "little"),
                             fd.to_bytes(4, "little"))
            except _BpfError as exc:
                raise KernelLoadError(f"{self.path}: map '{defn.name}', slot {slot} = "
                                      f"'{name}': BPF_MAP_UPDATE_ELEM failed: "
                                      f"{errno_text(exc.errno)}") from None

    # -- programs ---------------------------------------------------------------------------
    def _prog_attr(self, prog: ProgramDef) -> tuple[ProgLoadAttr, list[Any]]:
        """The BPF_PROG_LOAD attr of ``prog`` and the buffers it points into (keep alive)."""
        where = f"{self.path}: program '{prog.name}'"
        prog_type = PROG_TYPE_IDS.get(prog.prog_type)
        if not prog_type:
            raise KernelLoadError(f"{where}: section '{prog.section}' gives no program type "
                                  f"the kernel knows ({prog.prog_type!r})", program=prog.name)
        attach = 0
        if prog.attach_type is not None:
            if prog.attach_type not in ATTACH_TYPE_IDS:
                raise KernelLoadError(f"{where}: unknown expected attach type "
                                      f"{prog.attach_type!r}", program=prog.name)
            attach = ATTACH_TYPE_IDS[prog.attach_type]
        flags = BPF_F_XDP_HAS_FRAGS if prog.section.startswith("xdp.frags") else 0
        nmaps = len(self.elf.maps)
        for insn in prog.insns:
            if insn.opcode == LDDW_OPCODE and insn.src in (PseudoSrc.MAP_IDX,
                                                            PseudoSrc.MAP_IDX_VALUE):
                if not 0 <= insn.imm < nmaps:
                    raise KernelLoadError(f"{where}: lddw names map index {insn.imm}, the "
                                          f"object has {nmaps} maps", program=prog.name)
        code = encode(prog.insns)
        insns = ctypes.create_string_buffer(code, max(len(code), 1))
        license_ = ctypes.create_string_buffer(self.elf.license.encode())
        fd_array = (ctypes.c_int * max(nmaps, 1))(*self._map_fds)
        attr = ProgLoadAttr(
            prog_type=prog_type, insn_cnt=len(code) // 8, insns=ctypes.addressof(insns),
            license=ctypes.addressof(license_), prog_flags=flags,
            prog_name=kernel_name(prog.name).encode(), expected_attach_type=attach,
            fd_array=ctypes.addressof(fd_array) if nmaps else 0,
        )
        return attr, [insns, license_, fd_array]

    def _load_program(self, prog: ProgramDef, log_level: int, log_size: int
                      ) -> tuple[int, str]:
        """Load ``prog``: (fd, verifier log when one was asked for)."""
        attr, keep = self._prog_attr(prog)
        log = ""
        if log_level:
            buf = ctypes.create_string_buffer(log_size)
            attr.log_level, attr.log_size, attr.log_buf = log_level, log_size, \
                ctypes.addressof(buf)
            keep.append(buf)
        try:
            fd = _bpf(BPF_PROG_LOAD, attr)
            if log_level:
                log = keep[-1].value.decode(errors="replace")
            return fd, log
        except _BpfError as exc:
            err = exc.errno
        if not log_level:  # again with a log, for the reason
            buf = ctypes.create_string_buffer(max(log_size, 1 << 16))
            attr.log_level, attr.log_size, attr.log_buf = 1, len(buf), ctypes.addressof(buf)
            keep.append(buf)
            try:
                fd = _bpf(BPF_PROG_LOAD, attr)
                return fd, ""  # loaded after all: keep it
            except _BpfError as exc:
                err = exc.errno
        log = keep[-1].value.decode(errors="replace")
        last = _last_meaningful_line(log)
        where = f"{self.path}: program '{prog.name}'"
        if err == errno_mod.ENOSPC and log_level:
            message = (f"{where}: the verifier log outgrew log_size {log_size} at log_level "
                       f"{log_level} (ENOSPC)")
        elif last:
            message = f"{where} rejected by the verifier: {last}"
        else:
            message = f"{where}: BPF_PROG_LOAD failed: {errno_text(err)}"
        raise KernelLoadError(message, log, prog.name)

