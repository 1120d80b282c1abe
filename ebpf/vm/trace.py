"""What one run of the VM did, as plain data: the mapper and the simulator read it.

A ``Trace`` is filled while the VM runs and is returned with the result. Everything in it is
a plain dataclass of ints, strings, bytes and lists; ``to_dict()`` turns it into JSON-ready
data (bytes become lowercase hex strings).

``path`` is the basic-block path: the slot index of the entry, then the slot where control
lands after every conditional branch (taken: the target, not taken: the fall-through slot),
every ``ja``/``gotol``, every bpf-to-bpf call (the callee's entry) and every return from one
(the slot after the call). Consecutive entries therefore delimit straight-line runs of code.
After a tail call the slots belong to the new program; ``tail_calls`` records where in
``path`` each program starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class HelperCall:
    """One helper call: where, which, with what (only the arguments the helper takes)."""

    slot: int
    id: int
    name: str
    args: list[int]
    ret: int | None  # None for bpf_tail_call, which does not set r0 in the kernel


@dataclass
class MapOp:
    """One map access: a helper operation or a store through a pointer into a map value.

    ``op`` is ``lookup``, ``update``, ``delete`` (helpers) or ``store`` / ``atomic`` (a write
    through a value pointer, with ``offset`` and ``size`` inside the value). ``hit`` is true
    when the key existed (lookup, delete) or the update succeeded; ``write`` says whether
    map contents changed.
    """

    slot: int
    map: str
    op: str
    key: bytes | None
    hit: bool
    write: bool
    offset: int | None = None
    size: int | None = None
    ret: int | None = None  # the helper's return value (update / delete)


@dataclass
class TailCall:
    """One bpf_tail_call: the slot, the PROG_ARRAY index, the target (None: fell through)."""

    slot: int
    map: str
    index: int
    target: str | None
    path_index: int  # index into Trace.path where the target's slots start (if taken)


@dataclass
class Redirect:
    """Where an XDP_REDIRECT sends the packet (bpf_redirect or bpf_redirect_map)."""

    kind: str  # "ifindex" (bpf_redirect, or a failed redirect_map), "map" or "broadcast"
    ifindex: int | None = None  # the target ifindex (devmap: from the entry; ifindex: given)
    map: str | None = None
    key: int | None = None
    map_type: str | None = None  # devmap, devmap_hash, cpumap, xskmap
    target: int | None = None  # the map's redirect target (ifindex, cpu, socket)
    flags: int = 0


@dataclass
class Trace:
    """Everything observable about one run of one packet (or one ``Vm.run`` call)."""

    program: str
    ret: int = 0  # r0 at exit, 64 bits unsigned
    verdict: int | None = None  # XDP: r0 truncated to u32, as BPF_PROG_TEST_RUN reports it
    packet_out: bytes = b""
    redirect: Redirect | None = None
    path: list[int] = field(default_factory=list)
    insns: int = 0
    helper_calls: list[HelperCall] = field(default_factory=list)
    map_ops: list[MapOp] = field(default_factory=list)
    tail_calls: list[TailCall] = field(default_factory=list)
    printk: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: bytes as hex strings, nested dataclasses as dicts."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
