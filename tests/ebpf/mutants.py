"""Seeded mutants of the corpus objects, aimed at the fields a loader trusts.

A mutant is a corpus object with one to three fields overwritten. Fields are picked where
hostile objects hurt: the section headers (sizes, offsets, links), the symbol table (values,
sizes, section indices), relocations (offsets, symbol indices), BTF (type info words, array
dimensions, member offsets, string offsets), `.BTF.ext`, the `maps` and `.maps` data and the
code. The new value is an "interesting" integer (0, 1, all ones, a power of two near a
limit, a random word) of 1, 2, 4 or 8 bytes at an aligned offset, or, rarely, a truncation.
The same (seed, index) always gives the same bytes.
"""

from __future__ import annotations

import io
import random
from functools import cache

from elftools.elf.elffile import ELFFile

from tests.conftest import CORPUS_NAMES, corpus_object

SHDR_SIZE = 64  # Elf64_Shdr
# (section name or a prefix, weight): where the mutations go
TARGETS = ((".BTF", 6), (".BTF.ext", 3), (".symtab", 4), (".rel", 4), (".maps", 2),
           ("maps", 1), (".bss", 1), (".data", 1), (".rodata", 1), ("xdp", 2), ("license", 1),
           ("<shdr>", 5))


def _interesting(rng: random.Random, width: int) -> int:
    bits = 8 * width
    top = (1 << bits) - 1
    return rng.choice([0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, top, top >> 1, (top >> 1) + 1,
                       1 << (bits - 2), rng.getrandbits(bits), rng.getrandbits(bits) & 0xFFFF,
                       0xFFFF & top, 0x10000 & top, (1 << 31) & top])


@cache
def _layout(name: str) -> tuple[bytes, tuple[tuple[str, int, int], ...]]:
    """The object's bytes and (target, start, length) regions to mutate."""
    data = corpus_object(name).read_bytes()
    elf = ELFFile(io.BytesIO(data))
    regions = []
    for i, sec in enumerate(elf.iter_sections()):
        regions.append(("<shdr>", elf["e_shoff"] + i * elf["e_shentsize"], SHDR_SIZE))
        if sec["sh_type"] != "SHT_NOBITS" and sec["sh_size"]:
            regions.append((sec.name, sec["sh_offset"], sec["sh_size"]))
    return data, tuple(regions)


def mutant(seed: int, index: int, names: tuple[str, ...] = tuple(CORPUS_NAMES)
           ) -> tuple[str, bytes]:
    """(description, bytes) of mutant ``index`` of the run seeded ``seed``."""
    rng = random.Random(seed * 1_000_003 + index)
    name = rng.choice(names)
    data, regions = _layout(name)
    out = bytearray(data)
    edits = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        target = rng.choices([t for t, _ in TARGETS], [w for _, w in TARGETS])[0]
        pool = [r for r in regions if r[0] == target or (target == ".rel" and
                                                          r[0].startswith(".rel"))]
        if not pool:
            pool = list(regions)
        _, start, length = rng.choice(pool)
        width = rng.choice((1, 2, 4, 4, 4, 8))
        if length < width:
            continue
        at = start + rng.randrange(0, length - width + 1) // width * width
        value = _interesting(rng, width)
        out[at:at + width] = value.to_bytes(width, "little")
        edits.append(f"{at:#x}={value:#x}/{width}")
    if rng.random() < 0.03:
        cut = rng.randrange(len(out))
        del out[cut:]
        edits.append(f"cut@{cut:#x}")
    return f"{name}.o mutant {seed}:{index} ({', '.join(edits)})", bytes(out)
