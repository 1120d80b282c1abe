"""The lowering's intermediate form: symbolic register values, virtual containers, pipe ops.

Translation (``offload.lower.translate``) runs the program symbolically over its inlined,
unrolled control-flow DAG (``offload.lower.dag``) and records what each register and stack
byte holds as a ``Sym``:

=========== ===========================================================================
``Const``   a known 64-bit value (an immediate operand)
``Val``     bytes [off, off + size) of a PHV source, zero-extended: a virtual container
            (``Value``) or a metadata field (``Meta``). ``Val(v)`` is the whole container.
``Pkt``     a packet pointer: data + C[base] + k (``base`` None: a constant offset k)
``PktEnd``  ``data_end``; ``Ctx`` the ``xdp_md`` pointer; ``MapPtr`` a map;
``MapVal``  a pointer into the value of a map lookup (``Lookup``) at a constant offset;
``Stack``   a pointer into a stack frame (call depth, offset from the frame top);
``Top``     anything the lowering does not follow (its use is a lowering reason)
=========== ===========================================================================

Every operation that has to run on the pipeline becomes an ``Op`` (a scheduler unit):
an ALU / window / adjust / metadata op (one VLIW slot), a gateway (one predicate), a table,
a stateful op or an extern. Ops write ``Value`` s, virtual containers that
``offload.lower.containers`` maps onto PHV containers by liveness once the schedule is
known. An op runs under a ``guard``: ``TRUE`` (speculated: pure, runs on every packet),
``("node", n)`` the predicate of DAG node n, ``("edge", a, b)`` the predicate of the DAG
edge a -> b, or ``("or", guards)``; ``offload.lower.ifconvert`` turns guards into predicate
bits (gateways) by control dependence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hw.pipeline.config import target_params
from hw.targets import PipelineTarget

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1

TRUE: tuple = ("true",)


def node_guard(n: int) -> tuple:
    return ("node", n)


# --- PHV sources -------------------------------------------------------------------------

@dataclass(frozen=True)
class Meta:
    """A metadata field of the PHV index space (docs/pipeline.md, section 4)."""

    index: int

    @property
    def bits(self) -> int:
        return 32 if self.index in (49, 50, 51, 52, 53) else 16 if self.index in (48, 56) else 64


PKT_LEN, INGRESS, RX_QUEUE, VERDICT, REDIRECT, PUNT, HEAD_DELTA, TAIL_DELTA, DATA_LEN = (
    Meta(48), Meta(49), Meta(50), Meta(51), Meta(52), Meta(53), Meta(54), Meta(55), Meta(56))


class Value:
    """A virtual container: defined by ops (several for a phi), a parser extract, or a table."""

    __slots__ = ("id", "name", "bits", "kind", "extract", "defs", "uses", "slot", "zero_init",
                 "view")

    def __init__(self, vid: int, name: str, kind: str, bits: int = 64,
                 extract: tuple[int, int] | None = None, slot: int | None = None) -> None:
        self.id = vid
        self.name = name
        self.kind = kind  # op | phi | extract | action | fetch | extern | const
        self.bits = bits  # the value is below 2**bits
        self.extract = extract  # (offset, size) of a parser extract
        self.defs: list[Op] = []
        self.uses: list[Op] = []
        self.slot = slot
        self.zero_init = False  # its container must hold 0 until its first definition
        self.view: list | None = None  # what each of its bytes is (offload.lower.bytes)

    def __repr__(self) -> str:
        return f"v{self.id}({self.name})"


Src = Value | Meta


# --- symbolic values ---------------------------------------------------------------------

@dataclass(frozen=True)
class Const:
    value: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", self.value & M64)


@dataclass(frozen=True)
class Val:
    """Bytes [off, off + size) of ``src``, zero-extended."""

    src: Any  # Value | Meta
    off: int = 0
    size: int = 8

    @property
    def bits(self) -> int:
        inner = self.src.bits if self.off == 0 else 64
        return min(8 * self.size, inner)

    @property
    def whole(self) -> bool:
        """The source itself holds exactly this value (no byte of it outside the slice)."""
        return self.off == 0 and (self.size == 8 or self.src.bits <= 8 * self.size)


@dataclass(frozen=True)
class Pkt:
    base: Any  # Value | None
    k: int = 0


@dataclass(frozen=True)
class PktEnd:
    pass


@dataclass(frozen=True)
class Ctx:
    pass


@dataclass(frozen=True)
class MapPtr:
    map: int


@dataclass(frozen=True)
class MapVal:
    lookup: Any  # Lookup
    off: int = 0


@dataclass(frozen=True)
class Stack:
    depth: int
    off: int


@dataclass(frozen=True)
class Top:
    why: str = ""


Sym = Const | Val | Pkt | PktEnd | Ctx | MapPtr | MapVal | Stack | Top


# --- operations ---------------------------------------------------------------------------

class Op:
    """One scheduler unit of the lowered program."""

    kind = "alu"

    def __init__(self, oid: int, node: int, slot: int | None, guard: tuple) -> None:
        self.id = oid
        self.node = node  # DAG node (program order, reporting)
        self.slot = slot  # eBPF slot it comes from
        self.guard = guard
        self.dst: Value | Meta | None = None
        self.dead = False
        self.side_effect = False  # visible: window store, register write, adjust
        self.exclusive = False  # one of several writers of a value on exclusive paths
        self.may_fault = False
        self.pred: tuple = (None, False)  # resolved guard: (Pred | None, negated)

    def reads(self) -> list[Value | Meta]:
        return []

    operands: tuple[str, ...] = ()  # the attributes holding a source it reads

    def replace_read(self, old: Value, new: Src) -> None:
        """Read ``new`` wherever this op reads ``old`` (use lists: ``replace_all_uses``)."""
        for name in self.operands:
            if getattr(self, name) is old:
                setattr(self, name, new)

    @property
    def uid(self) -> str:
        return f"{self.kind[0]}{self.id}"

    def label(self) -> str:
        return f"{self.uid}@{self.slot}" if self.slot is not None else self.uid


class AluOp(Op):
    """A VLIW op: ``dst`` a Value, a writable Meta (verdict, redirect, punt) or None (discard)."""

    kind = "alu"
    operands = ("a", "b")

    def __init__(self, oid: int, node: int, slot: int | None, guard: tuple, op: str,
                 dst: Value | Meta | None, a: Src | None = None, b: Src | None = None,
                 imm: int = 0, width: int = 64, size: int = 8, offset: int = 0,
                 signed: bool = False, sel: tuple | None = None) -> None:
        super().__init__(oid, node, slot, guard)
        self.op, self.dst, self.a, self.b, self.imm = op, dst, a, b, imm & M64
        self.width, self.size, self.offset, self.signed = width, size, offset, signed
        self.sel = sel  # select guard of a ``sel`` op
        self.sel_pred: tuple = (None, False)

    def reads(self) -> list[Value | Meta]:
        return [x for x in (self.a, self.b) if x is not None]


class GatewayOp(Op):
    """A gateway writing predicate ``out`` = cmp(A, B) [xor invert] combined with ``pred_in``."""

    kind = "gateway"
    operands = ("a", "b")

    def __init__(self, oid: int, node: int, slot: int | None, cmp: str, a: Any,
                 b: Src | None = None, imm: int = 0, width: int = 64, a_offset: int = 0,
                 a_size: int = 8, invert: bool = False, combine: str = "and",
                 pred_in: tuple = (None, False)) -> None:
        super().__init__(oid, node, slot, TRUE)
        self.cmp, self.a, self.b, self.imm, self.width = cmp, a, b, imm & M64, width
        self.a_offset, self.a_size, self.invert, self.combine = a_offset, a_size, invert, combine
        self.pred_in = pred_in  # (Pred | None, neg)
        self.out: Pred | None = None

    def reads(self) -> list[Value | Meta]:
        if self.cmp == "pred":
            return []
        return [x for x in (self.a, self.b) if x is not None]


@dataclass
class KeyPart:
    """Bytes [off, off + size) of ``src`` (a Value or Meta) in a table key."""

    src: Any
    off: int
    size: int


class TableOp(Op):
    """A table lookup; may carry stateful ops indexed by its hit address (same stage)."""

    kind = "table"

    def __init__(self, oid: int, node: int, slot: int | None, guard: tuple, lookup: Lookup,
                 tkind: str, key: list[KeyPart], action: list[Value]) -> None:
        super().__init__(oid, node, slot, guard)
        self.lookup, self.tkind, self.key, self.action = lookup, tkind, key, action
        self.hit: Pred | None = None
        self.stateful: list[StatefulOp] = []

    def reads(self) -> list[Value | Meta]:
        out = [k.src for k in self.key]
        for s in self.stateful:
            out += s.reads()
        return out

    def replace_read(self, old: Value, new: Src) -> None:
        for k in self.key:
            if k.src is old:
                k.src = new
        for s in self.stateful:
            s.replace_read(old, new)


class StatefulOp(Op):
    """A read-modify-write on word ``word`` of a map's values (registers)."""

    kind = "stateful"
    operands = ("b", "index", "cmp")

    def __init__(self, oid: int, node: int, slot: int | None, guard: tuple, lookup: Lookup,
                 op: str, word: int, size: int, offset: int, b: Src | None = None,
                 imm: int = 0, fetch: Value | None = None, index: Src | None = None,
                 cmp: Src | None = None) -> None:
        super().__init__(oid, node, slot, guard)
        self.lookup, self.op, self.word, self.size, self.offset = lookup, op, word, size, offset
        self.b, self.imm, self.fetch, self.index, self.cmp = b, imm & M64, fetch, index, cmp
        self.dst = fetch
        self.table: TableOp | None = None  # hash / LPM maps: the table whose hit indexes it
        self.side_effect = op != "read"

    def reads(self) -> list[Value | Meta]:
        return [x for x in (self.b, self.index, self.cmp) if x is not None]


class ExternOp(Op):
    kind = "extern"

    def __init__(self, oid: int, node: int, slot: int | None, guard: tuple, ext: str,
                 dst: Value, x: Any = None, y: Any = None, seed: int = 0,
                 seed_src: Src | None = None) -> None:
        super().__init__(oid, node, slot, guard)
        self.ext, self.dst, self.x, self.y, self.seed, self.seed_src = ext, dst, x, y, seed, seed_src

    def reads(self) -> list[Value | Meta]:
        out = [self.seed_src] if self.seed_src is not None else []
        for buf in (self.x, self.y):
            if buf is not None and buf[0] == "containers":
                out += list(buf[1])
        return out

    def replace_read(self, old: Value, new: Src) -> None:
        if self.seed_src is old:
            self.seed_src = new
        for key in ("x", "y"):
            buf = getattr(self, key)
            if buf is not None and buf[0] == "containers":
                setattr(self, key, (buf[0], [new if v is old else v for v in buf[1]], buf[2]))


def replace_all_uses(old: Value, new: Value, ops: Iterable[Op] | None = None) -> None:
    """Every op of ``ops`` (default: ``old``'s uses) reads ``new`` where it read ``old``;
    each such op joins ``new``'s uses (once) and leaves ``old``'s."""
    changed = list(old.uses if ops is None else ops)
    for op in changed:
        op.replace_read(old, new)
        if any(x is new for x in op.reads()) and not any(u is op for u in new.uses):
            new.uses.append(op)
    gone = {id(op) for op in changed}
    old.uses = [u for u in old.uses if id(u) not in gone]


class Pred:
    """A predicate bit (allocated later): written by one gateway or one table's hit."""

    __slots__ = ("id", "name", "producer", "index")

    def __init__(self, pid: int, name: str, producer: Op) -> None:
        self.id, self.name, self.producer = pid, name, producer
        self.index: int | None = None

    def __repr__(self) -> str:
        return f"p{self.id}({self.name})"


# --- map lookups --------------------------------------------------------------------------

@dataclass(eq=False)
class Lookup:
    """One ``bpf_map_lookup_elem`` site (per DAG node), or a global-data value pointer."""

    id: int
    map: int  # index in ElfObject.maps
    node: int
    slot: int
    key: list[KeyPart] | None  # None: constant key
    const_key: int | None = None
    table: TableOp | None = None
    key_bytes: bytes = b""
    info: dict[str, Any] = field(default_factory=dict)


class Cond:
    """A branch condition (the taken edge): cmp(A, B) xor ``neg``; ``hit``: A's table hit.

    ``a`` is (source, byte offset, size) of the gateway's A slice, or the ``Lookup`` for
    ``hit``; ``b`` a source or None (``imm``). ``gateways`` lists the gateways made from it.
    """

    def __init__(self, cmp: str, a: Any = None, b: Any = None, imm: int = 0, width: int = 64,
                 neg: bool = False) -> None:
        self.cmp, self.a, self.b, self.imm, self.width, self.neg = cmp, a, b, imm & M64, \
            width, neg
        self.gateways: list[GatewayOp] = []

    def __repr__(self) -> str:
        return f"Cond({self.cmp}, neg={self.neg})"


@dataclass
class LowerReason:
    """A construct the lowering cannot put on the pipeline: the packets reaching it punt."""

    slot: int
    what: str
    fix: str = ""
    kind: str = "lowering"


# --- the target, as the lowering needs it -------------------------------------------------------
#
# ``lower_params`` reads a pipeline profile (``hw/targets/*.toml``) into ``LowerParams``
# through ``hw.pipeline.profile.target_params`` (the configuration document's ``target``
# section, ``hw.pipeline.TargetParams``: the profile's numbers clamped to what the
# configuration format can express), with ``rmt``'s 8/16/32-bit PHV modelled as 32-bit
# words in 64-bit containers (``max_value_bits`` 32: a value that needs more is a lowering
# reason there).


@dataclass(frozen=True)
class LowerParams:
    target: str
    window_bytes: int
    window_headroom: int
    frame_headroom: int
    variable_offset: bool
    mul_max_bits: int
    div: str
    action_containers: int
    key_slices: int
    key_bits: int
    num_containers: int
    max_value_bits: int
    map_types: tuple[str, ...]
    atomics: tuple[str, ...]


def lower_params(target: PipelineTarget) -> LowerParams:
    t = target_params(target)
    ebpf = target.ebpf
    return LowerParams(
        target=target.name, window_bytes=t.window_bytes, window_headroom=t.window_headroom,
        frame_headroom=t.frame_headroom, variable_offset=t.variable_offset,
        mul_max_bits=t.mul_max_bits, div=t.div, action_containers=t.action_containers,
        key_slices=t.key_slices, key_bits=t.key_bits, num_containers=t.num_containers,
        max_value_bits=min(64, target.phv.widest_bits),
        map_types=tuple(ebpf.map_types) if ebpf else (),
        atomics=tuple(ebpf.atomics) if ebpf else ())
