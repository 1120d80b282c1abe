"""The pipe target's operations as data: VLIW ops, gateway comparisons, stateful ops, externs.

One table per unit; each row names the operation, its code (the opcode field of the memory
image, docs/pipeline.md), its semantics function, the widths and sizes it accepts and the
operands it reads. The model executes through these tables, the configuration validator and
the image encoder read them, and the RTL testbench draws its test vectors from them: there is
no second list of codes.

Values are unsigned Python ints: containers hold 0 <= v < 2**64. Every edge case (division
by zero, shift masks, 32-bit zero extension) is in the docstring of the function that does it
and matches ebpf/vm/machine.py (the reference VM) and the kernel interpreter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
SIZE_CODES = {1: 0, 2: 1, 4: 2, 8: 3}  # a byte count in a 2-bit field
SIZES = {code: size for size, code in SIZE_CODES.items()}
EINVAL = 22


def mask(bits: int) -> int:
    return (1 << bits) - 1


def signed(value: int, bits: int) -> int:
    """``value``'s low ``bits`` bits as a two's complement integer."""
    value &= mask(bits)
    return value - (1 << bits) if value >> (bits - 1) else value


def sext(value: int, bits: int) -> int:
    """Sign-extend the low ``bits`` bits of ``value`` to 64 bits (unsigned result)."""
    return signed(value, bits) & M64


def bswap(value: int, nbytes: int) -> int:
    """Reverse the low ``nbytes`` bytes of ``value``; higher bytes are dropped."""
    return int.from_bytes((value & mask(8 * nbytes)).to_bytes(nbytes, "little"), "big")


# --- VLIW action unit ----------------------------------------------------------------------

@dataclass(frozen=True)
class OpInput:
    """What a VLIW op reads: operand values and the op's static fields."""

    a: int = 0
    b: int = 0
    width: int = 64
    size: int = 8
    offset: int = 0
    signed: bool = False
    sel: bool = False  # value of the select predicate (``sel`` only)


def _tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def op_add(x: OpInput) -> int:
    """dst = A + B mod 2**w."""
    return (x.a + x.b) & mask(x.width)


def op_sub(x: OpInput) -> int:
    """dst = A - B mod 2**w."""
    return (x.a - x.b) & mask(x.width)


def op_mul(x: OpInput) -> int:
    """dst = A * B mod 2**w (low bits; sign does not matter)."""
    m = mask(x.width)
    return ((x.a & m) * (x.b & m)) & m


def op_div(x: OpInput) -> int:
    """Unsigned A / B on w bits; B == 0 gives 0 (the verifier's patch, ``dst ^= dst``)."""
    m = mask(x.width)
    b = x.b & m
    return (x.a & m) // b if b else 0


def op_sdiv(x: OpInput) -> int:
    """Signed A / B on w bits, truncating toward zero; B == 0 gives 0; MIN / -1 gives MIN."""
    b = signed(x.b, x.width)
    if b == 0:
        return 0
    return _tdiv(signed(x.a, x.width), b) & mask(x.width)


def op_mod(x: OpInput) -> int:
    """Unsigned A % B on w bits; B == 0 gives A (truncated to w bits, zero-extended)."""
    m = mask(x.width)
    b = x.b & m
    return (x.a & m) % b if b else x.a & m


def op_smod(x: OpInput) -> int:
    """Signed A % B on w bits, sign of the dividend; B == 0 gives A (w bits); B == -1 gives 0."""
    b = signed(x.b, x.width)
    if b == 0:
        return x.a & mask(x.width)
    a = signed(x.a, x.width)
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & mask(x.width)


def op_or(x: OpInput) -> int:
    return (x.a | x.b) & mask(x.width)


def op_and(x: OpInput) -> int:
    return (x.a & x.b) & mask(x.width)


def op_xor(x: OpInput) -> int:
    return (x.a ^ x.b) & mask(x.width)


def op_lsh(x: OpInput) -> int:
    """A << (B & (w - 1)): the amount is masked to 63 (64-bit) or 31 (32-bit), as eBPF."""
    m = mask(x.width)
    return ((x.a & m) << (x.b & (x.width - 1))) & m


def op_rsh(x: OpInput) -> int:
    """Logical A >> (B & (w - 1))."""
    return (x.a & mask(x.width)) >> (x.b & (x.width - 1))


def op_arsh(x: OpInput) -> int:
    """Arithmetic A >> (B & (w - 1)) on w bits, zero-extended to 64 bits."""
    return (signed(x.a, x.width) >> (x.b & (x.width - 1))) & mask(x.width)


def op_neg(x: OpInput) -> int:
    """dst = -A mod 2**w."""
    return -x.a & mask(x.width)


def op_mov(x: OpInput) -> int:
    """dst = B (w bits; a load immediate is ``mov`` with an immediate B)."""
    return x.b & mask(x.width)


def op_sext(x: OpInput) -> int:
    """movsx: sign-extend the low ``size`` bytes of A to w bits (zero-extended beyond)."""
    return signed(x.a, 8 * x.size) & mask(x.width)


def op_be(x: OpInput) -> int:
    """to_be16/32/64 on a little-endian machine: swap the low ``size`` bytes of A."""
    return bswap(x.a, x.size)


def op_le(x: OpInput) -> int:
    """to_le16/32/64 on a little-endian machine: truncate A to ``size`` bytes."""
    return x.a & mask(8 * x.size)


def op_ext(x: OpInput) -> int:
    """Bytes [offset, offset+size) of A (little-endian), zero- or sign-extended (``signed``)."""
    v = (x.a >> (8 * x.offset)) & mask(8 * x.size)
    return sext(v, 8 * x.size) if x.signed else v


def op_ins(x: OpInput) -> int:
    """A with bytes [offset, offset+size) replaced by the low ``size`` bytes of B."""
    field = mask(8 * x.size) << (8 * x.offset)
    return (x.a & ~field & M64) | ((x.b << (8 * x.offset)) & field)


def op_sel(x: OpInput) -> int:
    """dst = A if the select predicate is set else B (w bits)."""
    return (x.a if x.sel else x.b) & mask(x.width)


@dataclass(frozen=True)
class VliwOp:
    """One VLIW opcode: ``kind`` says who executes it (``alu``: ``fn`` alone)."""

    name: str
    code: int
    kind: str  # nop | alu | wload | wstore | adjust
    fn: Callable[[OpInput], int] | None
    widths: tuple[int, ...] = (64,)
    sizes: tuple[int, ...] = ()  # () : the size field must be 8 (unused)
    reads_a: bool = False
    reads_b: bool = False
    uses_offset: bool = False  # ext/ins: byte offset 0-7; window ops: signed 16-bit offset
    signed_ok: bool = False
    variable: bool = False  # window address = C[A] + offset
    writes: bool = True  # writes its destination slot
    doc: str = ""

    @property
    def window(self) -> bool:
        """A window load or store: ``offset`` is a signed 16-bit packet offset."""
        return self.kind in ("wload", "wstore")


_ALU2 = (32, 64)
VLIW_OPS: tuple[VliwOp, ...] = (
    VliwOp("nop", 0, "nop", None, writes=False, doc="nothing"),
    VliwOp("mov", 1, "alu", op_mov, _ALU2, reads_b=True, doc="dst = B"),
    VliwOp("add", 2, "alu", op_add, _ALU2, reads_a=True, reads_b=True, doc="dst = A + B"),
    VliwOp("sub", 3, "alu", op_sub, _ALU2, reads_a=True, reads_b=True, doc="dst = A - B"),
    VliwOp("mul", 4, "alu", op_mul, _ALU2, reads_a=True, reads_b=True, doc="dst = A * B"),
    VliwOp("div", 5, "alu", op_div, _ALU2, reads_a=True, reads_b=True, doc="dst = A / B"),
    VliwOp("sdiv", 6, "alu", op_sdiv, _ALU2, reads_a=True, reads_b=True,
           doc="dst = A s/ B"),
    VliwOp("mod", 7, "alu", op_mod, _ALU2, reads_a=True, reads_b=True, doc="dst = A % B"),
    VliwOp("smod", 8, "alu", op_smod, _ALU2, reads_a=True, reads_b=True,
           doc="dst = A s% B"),
    VliwOp("or", 9, "alu", op_or, _ALU2, reads_a=True, reads_b=True, doc="dst = A | B"),
    VliwOp("and", 10, "alu", op_and, _ALU2, reads_a=True, reads_b=True, doc="dst = A & B"),
    VliwOp("xor", 11, "alu", op_xor, _ALU2, reads_a=True, reads_b=True, doc="dst = A ^ B"),
    VliwOp("lsh", 12, "alu", op_lsh, _ALU2, reads_a=True, reads_b=True, doc="dst = A << B"),
    VliwOp("rsh", 13, "alu", op_rsh, _ALU2, reads_a=True, reads_b=True, doc="dst = A >> B"),
    VliwOp("arsh", 14, "alu", op_arsh, _ALU2, reads_a=True, reads_b=True,
           doc="dst = A s>> B"),
    VliwOp("neg", 15, "alu", op_neg, _ALU2, reads_a=True, doc="dst = -A"),
    VliwOp("sext", 16, "alu", op_sext, _ALU2, (1, 2, 4), reads_a=True,
           doc="dst = sign-extend A[size]"),
    VliwOp("be", 17, "alu", op_be, (64,), (2, 4, 8), reads_a=True, doc="dst = bswap(A, size)"),
    VliwOp("le", 18, "alu", op_le, (64,), (2, 4, 8), reads_a=True, doc="dst = A[size]"),
    VliwOp("ext", 19, "alu", op_ext, (64,), (1, 2, 4, 8), reads_a=True, uses_offset=True,
           signed_ok=True, doc="dst = A bytes [offset, offset+size)"),
    VliwOp("ins", 20, "alu", op_ins, (64,), (1, 2, 4, 8), reads_a=True, reads_b=True,
           uses_offset=True, doc="dst = A with bytes [offset, offset+size) = B"),
    VliwOp("sel", 21, "alu", op_sel, _ALU2, reads_a=True, reads_b=True,
           doc="dst = P[sel] ? A : B"),
    VliwOp("wld", 22, "wload", None, (64,), (1, 2, 4, 8), uses_offset=True, signed_ok=True,
           doc="dst = window[offset]"),
    VliwOp("wldv", 23, "wload", None, (64,), (1, 2, 4, 8), reads_a=True, uses_offset=True,
           signed_ok=True, variable=True, doc="dst = window[C[A] + offset]"),
    VliwOp("wst", 24, "wstore", None, (64,), (1, 2, 4, 8), reads_b=True, uses_offset=True,
           writes=False, doc="window[offset] = B"),
    VliwOp("wstv", 25, "wstore", None, (64,), (1, 2, 4, 8), reads_a=True, reads_b=True,
           uses_offset=True, variable=True, writes=False, doc="window[C[A] + offset] = B"),
    VliwOp("adjh", 26, "adjust", None, (64,), reads_b=True,
           doc="dst = bpf_xdp_adjust_head(B)"),
    VliwOp("adjt", 27, "adjust", None, (64,), reads_b=True,
           doc="dst = bpf_xdp_adjust_tail(B)"),
)
VLIW_BY_NAME = {op.name: op for op in VLIW_OPS}
VLIW_BY_CODE = {op.code: op for op in VLIW_OPS}
DIV_OPS = frozenset({"div", "sdiv", "mod", "smod"})


def sext_sizes(width: int) -> tuple[int, ...]:
    """movsx sizes: 8/16/32 bits to 64, 8/16 bits to 32 (as eBPF's movsx forms)."""
    return (1, 2, 4) if width == 64 else (1, 2)


# --- gateways ------------------------------------------------------------------------------

def _u(fn: Callable[[int, int], bool]) -> Callable[[int, int, int], bool]:
    return lambda a, b, w: fn(a & mask(w), b & mask(w))


def _s(fn: Callable[[int, int], bool]) -> Callable[[int, int, int], bool]:
    return lambda a, b, w: fn(signed(a, w), signed(b, w))


@dataclass(frozen=True)
class GatewayCmp:
    """A gateway comparison of A and B on ``w`` bits (``pred``: A is a predicate index)."""

    name: str
    code: int
    fn: Callable[[int, int, int], bool] | None
    ebpf: str  # the eBPF conditional jump it implements


GATEWAY_CMPS: tuple[GatewayCmp, ...] = (
    GatewayCmp("eq", 0, _u(lambda a, b: a == b), "jeq"),
    GatewayCmp("ne", 1, _u(lambda a, b: a != b), "jne"),
    GatewayCmp("ugt", 2, _u(lambda a, b: a > b), "jgt"),
    GatewayCmp("uge", 3, _u(lambda a, b: a >= b), "jge"),
    GatewayCmp("ult", 4, _u(lambda a, b: a < b), "jlt"),
    GatewayCmp("ule", 5, _u(lambda a, b: a <= b), "jle"),
    GatewayCmp("sgt", 6, _s(lambda a, b: a > b), "jsgt"),
    GatewayCmp("sge", 7, _s(lambda a, b: a >= b), "jsge"),
    GatewayCmp("slt", 8, _s(lambda a, b: a < b), "jslt"),
    GatewayCmp("sle", 9, _s(lambda a, b: a <= b), "jsle"),
    GatewayCmp("set", 10, _u(lambda a, b: (a & b) != 0), "jset"),
    GatewayCmp("pred", 11, None, "-"),
)
GATEWAY_BY_NAME = {c.name: c for c in GATEWAY_CMPS}
GATEWAY_BY_CODE = {c.code: c for c in GATEWAY_CMPS}
COMBINES = ("and", "or")


# --- stateful ALU --------------------------------------------------------------------------

@dataclass(frozen=True)
class StatefulOp:
    """fn(old, b, cmp, bits) -> the new field value, or None when memory is not written.

    Every op fetches ``old`` (the field before the op, zero-extended) into its fetch
    container when one is configured.
    """

    name: str
    code: int
    fn: Callable[[int, int, int, int], int | None]
    doc: str


STATEFUL_OPS: tuple[StatefulOp, ...] = (
    StatefulOp("read", 0, lambda old, b, c, bits: None, "fetch = M"),
    StatefulOp("write", 1, lambda old, b, c, bits: b & mask(bits), "M = B"),
    StatefulOp("add", 2, lambda old, b, c, bits: (old + b) & mask(bits), "M = M + B"),
    StatefulOp("or", 3, lambda old, b, c, bits: (old | b) & mask(bits), "M = M | B"),
    StatefulOp("and", 4, lambda old, b, c, bits: old & b & mask(bits), "M = M & B"),
    StatefulOp("xor", 5, lambda old, b, c, bits: (old ^ b) & mask(bits), "M = M ^ B"),
    StatefulOp("xchg", 6, lambda old, b, c, bits: b & mask(bits), "M = B (fetch old)"),
    StatefulOp("cmpxchg", 7,
               lambda old, b, c, bits: b & mask(bits) if old == c & mask(bits) else None,
               "if M == C[cmp] then M = B"),
)
STATEFUL_BY_NAME = {o.name: o for o in STATEFUL_OPS}
STATEFUL_BY_CODE = {o.code: o for o in STATEFUL_OPS}


# --- externs -------------------------------------------------------------------------------

def csum_partial64(data: bytes, seed: int) -> int:
    """x86-64 csum_partial: ones'-complement sum of LE u64 words (last zero-padded), folded.

    The 64-bit end-around-carry sum, seeded with the 32-bit ``seed``, folded to 32 bits
    with end-around carry. Closed form: 0 when seed and data are all zero, else
    ((S - 1) mod (2**32 - 1)) + 1 where S is the plain sum of the LE u32 words and seed.
    """
    total = seed & M32
    padded = data + bytes(-len(data) % 4)
    for i in range(0, len(padded), 4):
        total += int.from_bytes(padded[i:i + 4], "little")
    return 0 if total == 0 else (total - 1) % M32 + 1


def _csum_add(a: int, b: int) -> int:
    s = a + b
    return (s & M32) + (s >> 32)


def fold16(value: int) -> int:
    """csum_from32to16: fold 32 bits to 16 with end-around carry (no inversion)."""
    value = (value & 0xFFFF) + (value >> 16)
    return ((value & 0xFFFF) + (value >> 16)) & 0xFFFF


def csum_diff(frm: bytes, to: bytes, seed: int, mode: str = "fold16") -> int:
    """bpf_csum_diff(from, from_size, to, to_size, seed) as the helper returns it (u64).

    ``fold16`` (Linux >= 6.13): both buffers: csum_sub(csum_partial(to, seed),
    csum_partial(from, 0)); only ``to``: csum_partial(to, seed); only ``from``:
    ~csum_partial(from, ~seed); neither: seed; then folded to 16 bits.
    ``x86_unfolded`` (older x86-64 kernels): csum_partial(~from ++ to, seed), 32 bits;
    sizes must be multiples of 4 (the configuration validator enforces it).
    """
    seed &= M32
    if mode == "fold16":
        ret = seed
        if frm and to:
            ret = _csum_add(csum_partial64(to, ret), ~csum_partial64(frm, 0) & M32)
        elif to:
            ret = csum_partial64(to, ret)
        elif frm:
            ret = ~csum_partial64(frm, ~ret & M32) & M32
        return fold16(ret)
    return csum_partial64(bytes(b ^ 0xFF for b in frm) + to, seed)


def _rol32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & M32


def jhash2(words: list[int], initval: int) -> int:
    """Linux jhash2 (include/linux/jhash.h; Bob Jenkins' lookup3 ``hashword``)."""
    a = b = c = (0xDEADBEEF + (len(words) << 2) + initval) & M32
    k = list(words)
    while len(k) > 3:
        a = (a + k[0]) & M32
        b = (b + k[1]) & M32
        c = (c + k[2]) & M32
        a = (a - c) & M32; a ^= _rol32(c, 4); c = (c + b) & M32  # noqa: E702
        b = (b - a) & M32; b ^= _rol32(a, 6); a = (a + c) & M32  # noqa: E702
        c = (c - b) & M32; c ^= _rol32(b, 8); b = (b + a) & M32  # noqa: E702
        a = (a - c) & M32; a ^= _rol32(c, 16); c = (c + b) & M32  # noqa: E702
        b = (b - a) & M32; b ^= _rol32(a, 19); a = (a + c) & M32  # noqa: E702
        c = (c - b) & M32; c ^= _rol32(b, 4); b = (b + a) & M32  # noqa: E702
        k = k[3:]
    if not k:
        return c
    if len(k) == 3:
        c = (c + k[2]) & M32
    if len(k) >= 2:
        b = (b + k[1]) & M32
    a = (a + k[0]) & M32
    c ^= b; c = (c - _rol32(b, 14)) & M32  # noqa: E702
    a ^= c; a = (a - _rol32(c, 11)) & M32  # noqa: E702
    b ^= a; b = (b - _rol32(a, 25)) & M32  # noqa: E702
    c ^= b; c = (c - _rol32(b, 16)) & M32  # noqa: E702
    a ^= c; a = (a - _rol32(c, 4)) & M32  # noqa: E702
    b ^= a; b = (b - _rol32(a, 14)) & M32  # noqa: E702
    c ^= b; c = (c - _rol32(b, 24)) & M32  # noqa: E702
    return c


def xorshift32(state: int) -> int:
    """Marsaglia's xorshift32 (13, 17, 5): the next state, which is also the output."""
    x = state & M32
    x ^= (x << 13) & M32
    x ^= x >> 17
    x ^= (x << 5) & M32
    return x


def timestamp_ns(cycle: int, clock_khz: int) -> int:
    """ns of a cycle count since reset: floor(cycle * 10**6 / clock_khz)."""
    return cycle * 1_000_000 // clock_khz


@dataclass(frozen=True)
class ExternKind:
    name: str
    code: int
    inputs: tuple[str, ...]  # the buffers it reads: x, y
    doc: str


EXTERN_KINDS: tuple[ExternKind, ...] = (
    ExternKind("checksum", 0, ("x", "y"), "dst = bpf_csum_diff(x, y, seed)"),
    ExternKind("hash", 1, ("x",), "dst = jhash2(x words, seed)"),
    ExternKind("random", 2, (), "state = xorshift32(state); dst = state"),
    ExternKind("timestamp", 3, (), "dst = admission cycle in ns"),
)
EXTERN_BY_NAME = {k.name: k for k in EXTERN_KINDS}
EXTERN_BY_CODE = {k.code: k for k in EXTERN_KINDS}
CSUM_MODES = ("fold16", "x86_unfolded")
BUFFER_KINDS = ("none", "window", "containers")


# --- PHV index space -----------------------------------------------------------------------

META_BASE = 48
MAX_CONTAINERS = 48


@dataclass(frozen=True)
class MetaField:
    index: int
    name: str
    writable: bool
    doc: str


METADATA: tuple[MetaField, ...] = (
    MetaField(48, "pkt_len", False, "original packet length, bytes"),
    MetaField(49, "ingress_ifindex", False, "ingress interface index"),
    MetaField(50, "rx_queue", False, "receive queue index"),
    MetaField(51, "verdict", True, "XDP action (low 32 bits); 0 = XDP_ABORTED at parse"),
    MetaField(52, "redirect", True, "redirect target ifindex (low 32 bits)"),
    MetaField(53, "punt_reason", True, "0: no punt; else punt to host (low 32 bits)"),
    MetaField(54, "head_delta", False, "data - original data, bytes, two's complement"),
    MetaField(55, "tail_delta", False, "data_end - original data_end, bytes"),
    MetaField(56, "data_len", False, "current length data_end - data, bytes"),
    MetaField(57, "fault", False, "1 after a window or headroom fault"),
)
META_BY_NAME = {m.name: m for m in METADATA}
META_BY_INDEX = {m.index: m for m in METADATA}
WRITABLE_META = frozenset(m.index for m in METADATA if m.writable)
DISCARD_SLOTS = range(58, 64)  # VLIW slots whose result is dropped (stores, unused returns)
PHV_INDEX_SPACE = 64
META_VERDICT = META_BY_NAME["verdict"].index
META_REDIRECT = META_BY_NAME["redirect"].index
META_PUNT = META_BY_NAME["punt_reason"].index

# punt reasons 1-15 are the hardware's; the mapper numbers its cuts from 16
PUNT_WINDOW_FAULT = 1
PUNT_HEADROOM_FAULT = 2
PUNT_FRAME_TOO_LONG = 3  # longer than frame_end: faulted at parse, punted unchanged
PUNT_FIRST_CUT = 16
PUNT_REASONS = {PUNT_WINDOW_FAULT: "window", PUNT_HEADROOM_FAULT: "headroom",
                PUNT_FRAME_TOO_LONG: "frame too long"}
WINDOW_OFFSET_BITS = 16  # the VLIW offset of a window op: two's complement

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
VERDICT_NAMES = ("aborted", "drop", "pass", "tx", "redirect")
