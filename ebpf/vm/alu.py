"""ALU, jump, endian and atomic operations as tables keyed by the ISA enums: (a, b) -> result on
registers held as unsigned ints, each edge case as the kernel's interpreter has it."""

from __future__ import annotations

import operator
from collections.abc import Callable

from ebpf.code.isa import (
    AluOp,
    AtomicOp,
    Endian,
    JmpOp,
)
from ebpf.vm.limits import M32, M64

# --------------------------------------------------------------------------------------------
# ALU operations: (a, b) -> result, registers as unsigned ints
# --------------------------------------------------------------------------------------------

def sx(value: int, bits: int) -> int:
    """Sign-extend the low ``bits`` of ``value`` to an unsigned 64-bit value."""
    value &= (1 << bits) - 1
    if value >> (bits - 1):
        value -= 1 << bits
    return value & M64


def signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _div64(a: int, b: int) -> int:
    """Unsigned; division by zero gives 0 (verifier patch: ``dst ^= dst``)."""
    return a // b if b else 0


def _sdiv64(a: int, b: int) -> int:
    """Signed (off=1), truncating toward zero; by 0 -> 0; LLONG_MIN / -1 -> LLONG_MIN."""
    if b == 0:
        return 0
    sa, sb = signed(a, 64), signed(b, 64)
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & M64


def _mod64(a: int, b: int) -> int:
    """Unsigned; modulo by zero leaves dst unchanged."""
    return a % b if b else a


def _smod64(a: int, b: int) -> int:
    """Signed (off=1): by 0 -> dst unchanged, by -1 -> 0; the sign follows the dividend."""
    if b == 0:
        return a
    sa, sb = signed(a, 64), signed(b, 64)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & M64


def _lsh64(a: int, b: int) -> int:
    """Shift amount masked to 63."""
    return (a << (b & 63)) & M64


def _arsh64(a: int, b: int) -> int:
    """Arithmetic shift right, amount masked to 63."""
    return (signed(a, 64) >> (b & 63)) & M64


def _div32(a: int, b: int) -> int:
    """Unsigned on the low 32 bits; by 0 (low 32 bits of src zero) -> 0."""
    b &= M32
    return (a & M32) // b if b else 0


def _sdiv32(a: int, b: int) -> int:
    """Signed 32-bit; by 0 -> 0; INT_MIN / -1 -> INT_MIN; result zero-extended."""
    sb = signed(b, 32)
    if sb == 0:
        return 0
    sa = signed(a, 32)
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & M32


def _mod32(a: int, b: int) -> int:
    """Unsigned 32-bit; by 0 -> dst's low 32 bits, zero-extended (``mov32 dst, dst``)."""
    b &= M32
    return (a & M32) % b if b else a & M32


def _smod32(a: int, b: int) -> int:
    """Signed 32-bit; by 0 -> dst zero-extended; by -1 -> 0; sign follows the dividend."""
    sb = signed(b, 32)
    if sb == 0:
        return a & M32
    sa = signed(a, 32)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & M32


def _lsh32(a: int, b: int) -> int:
    """Shift amount masked to 31; result zero-extended."""
    return ((a & M32) << (b & 31)) & M32


def _arsh32(a: int, b: int) -> int:
    """Arithmetic shift of the low 32 bits, amount masked to 31, zero-extended."""
    return (signed(a, 32) >> (b & 31)) & M32


# key: (AluOp, off). off selects sdiv/smod (1) and movsx (8, 16, 32).
ALU64_OPS: dict[tuple[AluOp, int], Callable[[int, int], int]] = {
    (AluOp.ADD, 0): lambda a, b: (a + b) & M64, (AluOp.SUB, 0): lambda a, b: (a - b) & M64,
    (AluOp.MUL, 0): lambda a, b: (a * b) & M64,
    (AluOp.DIV, 0): _div64, (AluOp.DIV, 1): _sdiv64,
    (AluOp.MOD, 0): _mod64, (AluOp.MOD, 1): _smod64,
    (AluOp.OR, 0): operator.or_, (AluOp.AND, 0): operator.and_, (AluOp.XOR, 0): operator.xor,
    (AluOp.LSH, 0): _lsh64, (AluOp.RSH, 0): lambda a, b: a >> (b & 63),
    (AluOp.ARSH, 0): _arsh64, (AluOp.MOV, 0): lambda a, b: b,
    (AluOp.MOV, 8): lambda a, b: sx(b, 8),  # movsx: sign-extend the low 8/16/32 bits
    (AluOp.MOV, 16): lambda a, b: sx(b, 16),
    (AluOp.MOV, 32): lambda a, b: sx(b, 32),
}
ALU32_OPS: dict[tuple[AluOp, int], Callable[[int, int], int]] = {
    (AluOp.ADD, 0): lambda a, b: (a + b) & M32, (AluOp.SUB, 0): lambda a, b: (a - b) & M32,
    (AluOp.MUL, 0): lambda a, b: (a * b) & M32,
    (AluOp.DIV, 0): _div32, (AluOp.DIV, 1): _sdiv32,
    (AluOp.MOD, 0): _mod32, (AluOp.MOD, 1): _smod32,
    (AluOp.OR, 0): lambda a, b: (a | b) & M32, (AluOp.AND, 0): lambda a, b: a & b & M32,
    (AluOp.XOR, 0): lambda a, b: (a ^ b) & M32,
    (AluOp.LSH, 0): _lsh32, (AluOp.RSH, 0): lambda a, b: (a & M32) >> (b & 31),
    (AluOp.ARSH, 0): _arsh32, (AluOp.MOV, 0): lambda a, b: b & M32,
    (AluOp.MOV, 8): lambda a, b: sx(b, 8) & M32,  # movsx to 32 bits, then zero-extended
    (AluOp.MOV, 16): lambda a, b: sx(b, 16) & M32,
}


def byte_swap(value: int, width: int) -> int:
    """Reverse the low ``width`` bits' bytes; the upper bits are dropped."""
    return int.from_bytes((value & ((1 << width) - 1)).to_bytes(width // 8, "little"), "big")


def endian_op(endian: Endian, width: int) -> Callable[[int], int]:
    """ALU END on a little-endian host: to-le truncates to ``width``; to-be swaps bytes.

    ALU64 END (BSWAP, v4) swaps unconditionally, like to-be.
    """
    if endian is Endian.TO_LE:
        mask = (1 << width) - 1
        return lambda v: v & mask
    return lambda v: byte_swap(v, width)


# --------------------------------------------------------------------------------------------
# conditional jumps: (a, b) -> bool on values masked to the width
# --------------------------------------------------------------------------------------------

def _jcond_table(bits: int) -> dict[JmpOp, Callable[[int, int], bool]]:
    """Unsigned compares as is; signed ones flip the sign bit (order-preserving)."""
    sign = 1 << (bits - 1)
    return {
        JmpOp.JEQ: operator.eq, JmpOp.JNE: operator.ne,
        JmpOp.JGT: operator.gt, JmpOp.JGE: operator.ge,
        JmpOp.JLT: operator.lt, JmpOp.JLE: operator.le,
        JmpOp.JSET: lambda a, b: (a & b) != 0,
        JmpOp.JSGT: lambda a, b: (a ^ sign) > (b ^ sign),
        JmpOp.JSGE: lambda a, b: (a ^ sign) >= (b ^ sign),
        JmpOp.JSLT: lambda a, b: (a ^ sign) < (b ^ sign),
        JmpOp.JSLE: lambda a, b: (a ^ sign) <= (b ^ sign),
    }


JMP64_OPS = _jcond_table(64)
JMP32_OPS = _jcond_table(32)


# --------------------------------------------------------------------------------------------
# atomics: (old, src) -> new, on values of the access width
# --------------------------------------------------------------------------------------------

ATOMIC_OPS: dict[int, Callable[[int, int], int]] = {
    AtomicOp.ADD: operator.add, AtomicOp.OR: operator.or_, AtomicOp.AND: operator.and_,
    AtomicOp.XOR: operator.xor,
}

