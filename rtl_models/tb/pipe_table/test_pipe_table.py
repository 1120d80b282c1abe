"""pipe_table against hw/pipeline/state.py's TableMemory: exact, ternary, lpm, direct.

A configuration of two logical stages with one table of each kind in slots 0-3, on a
target of one physical stage: the DUT (one slot, SLOT from the environment) holds both
logical stages as banks 0 and 1, loaded from the images. Lookups use keys built from
container slices (hits and misses; ternary keys that match several entries, so the lowest
address must win; LPM prefixes of several lengths), enabled and disabled, in both banks;
between them the control plane writes and deletes entries (mirrored in TableMemory).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline.config import Entry, Table, prefix_mask
from hw.pipeline.images import encode_table
from hw.pipeline.state import TableMemory
from rtl_models.tbkit import TB, read_config

LOOKUPS = 400
KEY_BITS = 512


def _entries(kind: str, rng, size: int, key_bytes: int, data_bytes: int) -> list[dict]:
    out = []
    keys = set()
    prefixes = sorted((rng.randrange(0, 8 * key_bytes + 1) for _ in range(size)),
                      reverse=True)
    for i in range(size):
        if rng.random() < 0.25:
            continue
        e: dict = {"index": i, "data": rng.getrandbits(8 * data_bytes).to_bytes(
            data_bytes, "little").hex()}
        if kind != "direct":
            while True:
                k = bytes(rng.getrandbits(8) for _ in range(key_bytes))
                if k not in keys:
                    keys.add(k)
                    break
            e["key"] = k.hex()
        if kind == "ternary":
            e["mask"] = bytes(rng.choice((0, 0xFF, 0xF0, rng.getrandbits(8)))
                              for _ in range(key_bytes)).hex()
        if kind == "lpm":
            e["prefix_len"] = prefixes[i]
        out.append(e)
    return out


def make_config(rng) -> dict:
    """Two logical stages (banks) with an exact, a ternary, an lpm and a direct table."""
    stages = []
    for _ in range(2):
        specs = [
            ("exact", 24, [{"container": 1, "offset": 0, "size": 4},
                           {"container": 2, "offset": 2, "size": 2}], [5, 6]),
            ("ternary", 20, [{"container": 3, "offset": 0, "size": 8},
                             {"container": 52, "offset": 0, "size": 1}], [7]),
            ("lpm", 16, [{"container": 4, "offset": 1, "size": 4}], [8, 9, 10, 11]),
            ("direct", 40, [{"container": 12, "offset": 3, "size": 2}], [13, 14, 15]),
        ]
        tables = []
        for slot, (kind, size, key, action) in enumerate(specs):
            kb = sum(s["size"] for s in key)
            tables.append({"slot": slot, "kind": kind, "size": size, "key": key,
                           "action": action, "hit": 10 + slot, "enable": 20 + slot,
                           "enable_neg": slot == 3,
                           "entries": _entries(kind, rng, size, kb, 8 * len(action))})
        stages.append({"tables": tables})
    return {"format": "xdp-offload-pipeline", "version": 1,
            "target": {"num_stages": 1, "key_bits": KEY_BITS}, "stages": stages}


class TableTB(TB):
    def __init__(self, dut, config, slot: int) -> None:
        super().__init__(dut)
        self.config = config
        self.slot = slot
        self.tables: list[Table] = [st.get_table(slot) for st in config.stages]
        self.mems = [TableMemory(t) for t in self.tables]
        self.hits = 0
        for sig in ("g_valid", "g_cfg", "g_bank", "g_rd", "t_valid", "t_pg", "cp_we",
                    "cp_bank", "cp_addr", "cp_entry_valid", "cp_key", "cp_mask", "cp_data"):
            getattr(dut, sig).value = 0

    def key_for(self, bank: int) -> tuple[bytes, list[int]]:
        """A key (a hit most of the time) and a read bus that builds it."""
        t, mem = self.tables[bank], self.mems[bank]
        kb = t.key_bytes
        entries = mem.iter_entries()
        if t.kind == "direct":
            idx = self.rng.randrange(0, t.size + 8)
            key = idx.to_bytes(kb, "little") if idx < 1 << (8 * kb) else bytes(kb)
        elif entries and self.rng.random() < 0.7:
            e = self.rng.choice(entries)
            m = int.from_bytes(t.get_mask(e), "little")
            k = int.from_bytes(e.key, "little")
            r = self.rng.getrandbits(8 * kb)
            key = ((k & m) | (r & ~m)).to_bytes(kb, "little")
        else:
            key = bytes(self.rng.getrandbits(8) for _ in range(kb))
        rd = [self.rng.getrandbits(64) for _ in range(64)]
        pos = 0
        for s in t.key:
            word = rd[s.container].to_bytes(8, "little")
            word = word[:s.offset] + key[pos:pos + s.size] + word[s.offset + s.size:]
            rd[s.container] = int.from_bytes(word, "little")
            pos += s.size
        return key, rd

    async def lookup(self, bank: int) -> None:
        t, mem = self.tables[bank], self.mems[bank]
        key, rd = self.key_for(bank)
        pg = self.rng.getrandbits(64) | 1
        enabled = bool(pg >> t.enable & 1) != t.enable_neg
        exp = mem.lookup(key) if enabled else None
        self.hits += exp is not None
        d = self.dut
        d.g_valid.value = 1
        d.g_cfg.value = encode_table(t)
        d.g_bank.value = bank
        d.g_rd.value = sum(v << (64 * i) for i, v in enumerate(rd))
        await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        d.g_valid.value = 0
        d.t_valid.value = 1
        d.t_pg.value = pg
        await RisingEdge(self.clk)
        await ReadOnly()
        ctx = dict(kind=t.kind, bank=bank, key=key.hex(), enabled=enabled)
        self.check("x_hit", int(d.x_hit.value), int(exp is not None), **ctx)
        if exp is not None:
            self.check("x_addr", int(d.x_addr.value), exp[0], **ctx)
            data = int.from_bytes(exp[1], "little")
            self.check("x_data", int(d.x_data.value) & ((1 << (8 * len(exp[1]))) - 1), data,
                       **ctx)
        self.check("x_cfg", int(d.x_cfg.value), encode_table(t), **ctx)
        await FallingEdge(self.clk)
        d.t_valid.value = 0

    async def control_plane(self, bank: int) -> None:
        """One write or delete through the port, mirrored in TableMemory."""
        t, mem = self.tables[bank], self.mems[bank]
        addr = self.rng.randrange(t.size)
        d = self.dut
        if self.rng.random() < 0.3:
            mem.delete(addr)
            valid, key, mask, data = 0, 0, 0, 0
        else:
            kb = t.key_bytes
            used = {e.key for e in mem.iter_entries() if e.index != addr}
            while True:
                k = bytes(self.rng.getrandbits(8) for _ in range(kb)) if t.kind != "direct" \
                    else b""
                if k not in used or t.kind == "direct":
                    break
            e = Entry(index=addr, key=k,
                      mask=bytes(self.rng.getrandbits(8) for _ in range(kb))
                      if t.kind == "ternary" else None,
                      prefix_len=self.rng.randrange(0, 8 * kb + 1) if t.kind == "lpm" else None,
                      data=bytes(self.rng.getrandbits(8) for _ in range(t.data_bytes)))
            mem.write(e)
            valid = 1
            key = int.from_bytes(k, "little")
            mask = int.from_bytes(t.get_mask(e), "little") if t.kind in ("ternary", "lpm") \
                else 0
            data = int.from_bytes(e.data, "little")
        d.cp_we.value = 1
        d.cp_bank.value = bank
        d.cp_addr.value = addr
        d.cp_entry_valid.value = valid
        d.cp_key.value = key
        d.cp_mask.value = mask
        d.cp_data.value = data
        await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        d.cp_we.value = 0


@cocotb.test()
async def test_lookups_and_writes(dut):
    """Lookups in both banks against TableMemory, with control-plane writes between."""
    config = read_config(os.environ["PIPE_IMAGES"])
    tb = TableTB(dut, config, int(os.environ["SLOT"]))
    await tb.reset()
    await FallingEdge(tb.clk)
    for i in range(LOOKUPS):
        if i % 8 == 7:
            await tb.control_plane(tb.rng.randrange(2))
        await tb.lookup(tb.rng.randrange(2))
    tb.log.info("%s: %d lookups, %d hits", tb.tables[0].kind, LOOKUPS, tb.hits)
    assert LOOKUPS // 5 < tb.hits < LOOKUPS, "lookups should mix hits and misses"


def run(workdir: Path) -> None:
    """Write the images, then one build and run per table slot (kind)."""
    import random

    from rtl_models.runner import run_testbench
    from rtl_models.tbkit import write_images

    cfg = write_images(make_config(random.Random(7)), workdir / "images")
    assert prefix_mask(3, 1) == b"\xe0"
    for slot in range(4):
        run_testbench("pipe_table", parameters={
            "SLOT": slot, "NUM_PASSES": 2, "NUM_STAGES": 1, "TABLE_DEPTH": 64,
            "KEY_BITS": KEY_BITS, "TABLES": cfg.target.tables,
            "ACTION_CONTAINERS": cfg.target.action_containers,
            "IMAGE_DIR": str((workdir / "images").resolve())},
            env={"PIPE_IMAGES": str(workdir / "images"), "SLOT": str(slot)})
