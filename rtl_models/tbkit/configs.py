"""Random pipeline configurations that validate: every unit kind, for stage and system tests.

``random_config(rng, packets)`` draws a configuration document (docs/pipeline.md section
10) for the default target with a full ALU: parser extracts into containers 0-7, and per
logical stage gateways, an exact, a ternary, an lpm and a direct table (exact and ternary
keys taken from the given packets, so that lookups hit), VLIW ops of every kind (ALU ops,
window loads and stores at constant and variable offsets that sometimes fall outside the
window, one adjust op, writes to verdict / redirect / punt_reason), two stateful units and
the four externs. Containers 0-7 are never written, so every stage's keys see the parsed
values; each stage writes each container at most once (validation's rule).
"""

from __future__ import annotations

import random
from typing import Any

from hw.pipeline import ops as O

EXTRACTS = [(0, 12, 2), (1, 14, 1), (2, 26, 4), (3, 30, 4), (4, 23, 1), (5, 34, 2),
            (6, 0, 8), (7, 16, 8)]  # container, offset, size (IPv4-ish fields)
READABLE_META = (48, 49, 50, 51, 52, 53, 54, 55, 56, 57)
FULL_ALU = {"mul_max_bits": 64, "div": "full"}


def extract_values(packet: bytes) -> list[int]:
    """Containers 0-7 after the parser (the window is zero past the packet)."""
    win = packet[:256].ljust(256, b"\0")
    return [int.from_bytes(win[o:o + s], "little") for _, o, s in EXTRACTS]


def _operand(rng: random.Random) -> dict[str, int]:
    r = rng.random()
    if r < 0.45:
        return {"b": rng.randrange(0, 8)}
    if r < 0.55:
        return {"b": rng.choice(READABLE_META)}
    return {"imm": rng.choice((0, 1, 2, 7, 64, 255, -1, -2, 1 << 31, rng.getrandbits(64),
                               rng.randrange(-1000, 1000)))}


def _src(rng: random.Random) -> int:
    return rng.randrange(0, 8) if rng.random() < 0.85 else rng.choice(READABLE_META)


class _Full(Exception):
    """No writable slot left in the stage."""


class _Stage:
    """Draws one logical stage; tracks written containers and predicates."""

    def __init__(self, rng: random.Random, packets: list[bytes], *, adjust: bool) -> None:
        self.rng = rng
        self.packets = packets
        self.pool = list(range(8, 32))
        rng.shuffle(self.pool)
        self.preds = list(range(1, 64))
        rng.shuffle(self.preds)
        self.used_preds: list[int] = [0]
        self.adjust = adjust
        self.slots: set[int] = set()

    def container(self) -> int:
        return self.pool.pop()

    def pred(self) -> int:
        p = self.preds.pop()
        self.used_preds.append(p)
        return p

    def guard(self) -> dict[str, Any]:
        """A predicate for a unit: mostly one written earlier in this stage, or always."""
        if self.rng.random() < 0.35:
            return {"pred": 0, "pred_neg": False}
        return {"pred": self.rng.choice(self.used_preds), "pred_neg": self.rng.random() < 0.4}

    def risky_guard(self) -> dict[str, Any]:
        """For an op that may fault: a predicate that depends on the packet."""
        preds = self.used_preds[1:] or [0]
        return {"pred": self.rng.choice(preds), "pred_neg": self.rng.random() < 0.5}

    def gateways(self) -> list[dict]:
        out = []
        for _ in range(self.rng.randrange(2, 7)):
            cmp = self.rng.choice(O.GATEWAY_CMPS).name
            size = self.rng.choice((1, 2, 4, 8))
            g: dict[str, Any] = {"cmp": cmp, "width": self.rng.choice((32, 64)),
                                 "a_size": size, "a_offset": self.rng.randrange(0, 9 - size),
                                 "invert": self.rng.random() < 0.3,
                                 "combine": self.rng.choice(O.COMBINES),
                                 "pred_in": self.rng.choice(self.used_preds),
                                 "pred_in_neg": self.rng.random() < 0.3}
            if cmp == "pred":
                g["a"] = self.rng.choice(self.used_preds)
            else:
                g["a"] = _src(self.rng)
                if self.rng.random() < 0.3 and self.packets:  # compare with a packet's value
                    vals = extract_values(self.rng.choice(self.packets))
                    g["a"] = self.rng.randrange(8)
                    g["imm"] = (vals[g["a"]] >> (8 * g["a_offset"])) & O.mask(8 * size)
                else:
                    g.update(_operand(self.rng))
            g["dst"] = self.pred()
            out.append(g)
        return out

    def _key_entry_values(self, slices: list[tuple[int, int, int]]) -> bytes:
        vals = extract_values(self.rng.choice(self.packets))
        return b"".join(vals[c].to_bytes(8, "little")[o:o + s] for c, o, s in slices)

    def tables(self) -> list[dict]:
        r = self.rng
        out = []
        # exact: c0 (EtherType) and part of c2; keys from packets
        sl = [(0, 0, 2), (2, r.choice((0, 1)), 2)]
        keys = {self._key_entry_values(sl) for _ in range(12)}
        keys |= {bytes(r.getrandbits(8) for _ in range(4)) for _ in range(3)}
        out.append({"slot": 0, "kind": "exact", "size": 16,
                    "key": [{"container": c, "offset": o, "size": s} for c, o, s in sl],
                    "action": [self.container() for _ in range(r.randrange(1, 3))],
                    "entries": [{"index": i, "key": k.hex(),
                                 "data": bytes(r.getrandbits(8) for _ in range(8)).hex()}
                                for i, k in enumerate(sorted(keys)[:16])]})
        # ternary on c3 (4 bytes): overlapping masks, the lowest address wins
        sl = [(3, 0, 4)]
        ents = []
        for i in range(12):
            k = self._key_entry_values(sl)
            m = bytes(r.choice((0xFF, 0xFF, 0xF0, 0x00)) for _ in range(4))
            ents.append({"index": i, "key": k.hex(), "mask": m.hex(),
                         "data": bytes(r.getrandbits(8) for _ in range(16)).hex()})
        out.append({"slot": 1, "kind": "ternary", "size": 12,
                    "key": [{"container": 3, "offset": 0, "size": 4}],
                    "action": [self.container(), self.container()], "entries": ents})
        # lpm on c2 (an IPv4 address), longest prefix first
        prefixes = sorted((r.randrange(0, 33) for _ in range(10)), reverse=True)
        out.append({"slot": 2, "kind": "lpm", "size": 10,
                    "key": [{"container": 2, "offset": 0, "size": 4}],
                    "action": [self.container()],
                    "entries": [{"index": i, "key": self._key_entry_values([(2, 0, 4)]).hex(),
                                 "prefix_len": p, "data": r.getrandbits(64).to_bytes(
                                     8, "little").hex()} for i, p in enumerate(prefixes)]})
        # direct on c4 (one byte): an array of 100
        out.append({"slot": 3, "kind": "direct", "size": 100,
                    "key": [{"container": 4, "offset": 0, "size": 1}],
                    "action": [self.container()],
                    "entries": [{"index": i, "data": r.getrandbits(64).to_bytes(8, "little")
                                 .hex()} for i in r.sample(range(100), 30)]})
        for tb in out:
            tb["hit"] = self.pred() if r.random() < 0.8 else 0
            tb.update({"enable": r.choice(self.used_preds), "enable_neg": r.random() < 0.3}
                      if r.random() < 0.4 else {})
        return out

    def _slot(self, allow_meta: bool = True) -> int:
        r = self.rng.random()
        if allow_meta and r < 0.12:
            free = [s for s in (51, 52, 53) if s not in self.slots]
            if free:
                s = self.rng.choice(free)
                self.slots.add(s)
                return s
        if r < 0.2:
            free = [s for s in range(58, 64) if s not in self.slots]
            if free:
                s = self.rng.choice(free)
                self.slots.add(s)
                return s
        if not self.pool:
            free = [s for s in range(58, 64) if s not in self.slots]
            if not free:
                raise _Full
            s = free[0]
        else:
            s = self.container()
        self.slots.add(s)
        return s

    def ops(self) -> list[dict]:
        out: list[dict] = []
        try:
            self._ops(out)
        except _Full:
            pass
        return out

    def _ops(self, out: list[dict]) -> None:
        r = self.rng
        alu = [op for op in O.VLIW_OPS if op.kind == "alu"]
        for _ in range(r.randrange(4, 10)):
            spec = r.choice(alu)
            width = r.choice(spec.widths)
            sizes = O.sext_sizes(width) if spec.name == "sext" else spec.sizes
            op: dict[str, Any] = {"slot": self._slot(), "op": spec.name, "width": width,
                                  **self.guard()}
            if op["slot"] == 53:  # a cut to the host, now and then
                op.update({"op": "mov", "width": 64, "imm": r.choice((16, 17, 99)),
                           "pred": r.choice(self.used_preds[1:] or [0]), "pred_neg": False})
                if op["pred"] == 0:
                    op["imm"] = 0
                out.append(op)
                continue
            if spec.reads_a:
                op["a"] = _src(r)
            if spec.reads_b:
                op.update(_operand(r))
            if sizes:
                op["size"] = r.choice(sizes)
            if spec.uses_offset:
                op["offset"] = r.randrange(0, 9 - op.get("size", 8))
            if spec.signed_ok:
                op["signed"] = r.random() < 0.5
            if spec.name == "sel":
                op["sel"] = r.choice(self.used_preds)
            out.append(op)
        for _ in range(r.randrange(1, 4)):  # window loads
            faulty = r.random() < 0.15  # off the window: a fault, predicated on the packet
            variable = r.random() < 0.4
            size = r.choice((1, 2, 4, 8))
            op = {"slot": self._slot(allow_meta=False), "op": "wldv" if variable else "wld",
                  "size": size, "signed": r.random() < 0.3,
                  **(self.risky_guard() if faulty else self.guard())}
            if variable:  # C[a] + offset: containers 1 and 4 hold one byte
                op["a"] = r.choice((1, 4)) if not faulty else r.randrange(0, 8)
                op["offset"] = r.randrange(-60, 60)
            elif faulty:
                op["offset"] = r.choice((r.randrange(-70, -60), r.randrange(240, 320 - size + 1)))
            else:
                op["offset"] = r.randrange(-8, 200)
            out.append(op)
        for _ in range(r.randrange(0, 3)):  # window stores
            faulty = r.random() < 0.1
            variable = r.random() < 0.4
            size = r.choice((1, 2, 4, 8))
            free = [s for s in range(58, 64) if s not in self.slots]
            if not free:
                break
            op = {"slot": free[0], "op": "wstv" if variable else "wst", "size": size,
                  **_operand(r), **(self.risky_guard() if faulty else self.guard())}
            self.slots.add(free[0])
            if variable:
                op["a"] = r.choice((1, 4))
                op["offset"] = r.randrange(-40, 60)
            else:
                op["offset"] = r.randrange(-64, 120) if not faulty else r.randrange(-70, -64)
            out.append(op)
        if self.adjust and r.random() < 0.7:
            name = "adjh" if r.random() < 0.6 else "adjt"
            delta = r.choice((-100, -100, -100, -8, 8, -60, -3000) if name == "adjh" else
                             (-8, -2, 2, 4, 20, 100, 300, -3000))
            out.append({"slot": self._slot(allow_meta=False), "op": name, "imm": delta,
                        **(self.risky_guard() if delta == -100 else self.guard())})

    def stateful(self) -> list[dict]:
        r = self.rng
        out = []
        for unit, by_table in ((0, True), (1, False)):
            op = r.choice(O.STATEFUL_OPS).name
            size = r.choice((1, 2, 4, 8))
            u: dict[str, Any] = {"unit": unit, "op": op, "size": size,
                                 "offset": size * r.randrange(0, 8 // size), **self.guard(),
                                 "init": [[a, r.getrandbits(64)] for a in range(0, 64, 3)]}
            if by_table:
                u.update({"words": 64, "index": {"table": r.choice((0, 3))}, "base": 0,
                          "stride": 1})
                if u["index"]["table"] == 0:
                    u.update({"base": r.randrange(0, 8), "stride": r.choice((1, 2, 3))})
                    u["words"] = max(64, u["base"] + 15 * u["stride"] + 1)
                else:
                    u["words"] = 100
            else:
                u.update({"words": 200, "index": {"container": r.choice((1, 4))},
                          "base": r.randrange(0, 4), "stride": 1})
            if op != "read":
                u.update(_operand(r))
            if op == "cmpxchg":
                u["cmp"] = r.randrange(0, 8)
            if r.random() < 0.7:
                u["fetch"] = self.container()
            out.append(u)
        return out

    def externs(self) -> list[dict]:
        r = self.rng
        units = r.sample(range(4), 4)
        out = []
        for unit, kind in zip(units, ("checksum", "hash", "random", "timestamp"), strict=True):
            if r.random() < 0.2:
                continue
            e: dict[str, Any] = {"unit": unit, "kind": kind, "dst": self.container(),
                                 **self.risky_guard()}
            if kind == "checksum":
                mode = r.choice(O.CSUM_MODES)
                e["mode"] = mode
                for key in ("x", "y"):
                    if r.random() < 0.25:
                        continue
                    n = r.randrange(0, 33)
                    if mode == "x86_unfolded":
                        n -= n % 4
                    e[key] = ({"window": min(r.choice((14, 20, 26, 14, 20, 26, 30, 300)),
                                             320 - n), "length": n}
                              if r.random() < 0.6 else
                              {"containers": r.randrange(0, 4), "length": n})
                if r.random() < 0.3:
                    e["seed_container"] = r.randrange(0, 8)
                else:
                    e["seed"] = r.getrandbits(32)
            elif kind == "hash":
                n = 4 * r.randrange(0, 9)
                e["x"] = ({"window": min(r.choice((14, 26, 30, 14, 26, 300)), 320 - n),
                           "length": n}
                          if r.random() < 0.5 else {"containers": r.randrange(0, 4),
                                                    "length": n})
                e["seed"] = r.getrandbits(32)
            elif kind == "random":
                e["seed"] = r.randrange(1, 1 << 32)
            out.append(e)
        return out

    def draw(self) -> dict:
        st: dict[str, Any] = {"gateways": self.gateways()}
        st["tables"] = self.tables()
        st["stateful"] = self.stateful()
        st["externs"] = self.externs()
        st["ops"] = self.ops()  # last: ops take the containers left
        return st


def random_config(rng: random.Random, packets: list[bytes], *, stages: int = 1,
                  target: dict | None = None, adjust: bool = True) -> dict:
    """A valid configuration document exercising every unit (see the module docstring)."""
    doc_stages = [_Stage(rng, packets, adjust=adjust).draw() for _ in range(stages)]
    punt = rng.sample([*range(0, 8), 48, 49, 53, 56], rng.randrange(0, 9))
    return {"format": "xdp-offload-pipeline", "version": 1, "program": "random",
            "target": {**FULL_ALU, **(target or {})},
            "parser": {"extracts": [{"container": c, "offset": o, "size": s}
                                    for c, o, s in EXTRACTS]},
            "stages": doc_stages,
            "deparser": {"default_verdict": rng.randrange(0, 5), "punt_containers": punt}}


def balanced_config(rng: random.Random, packets: list[bytes], *, stages: int = 1,
                    target: dict | None = None, tries: int = 200) -> dict:
    """A random configuration whose behaviour on ``packets`` is mixed (by the model): some
    packets fault (window and headroom faults) and most do not, tables hit, registers are
    written, packets move, verdicts vary; so that a test with it exercises every path.
    Deterministic for a given rng; the best of ``tries`` drafts if none has it all."""
    from hw.pipeline import PipelineModel, load_config

    best = None
    for _ in range(tries):
        doc = random_config(rng, packets, stages=stages, target=target)
        model = PipelineModel(load_config(doc))
        rs = [model.process(p) for p in packets]
        n = len(rs)
        faults = sum(r.get_meta("fault") for r in rs)
        punts = sum(r.punted for r in rs)
        writes = sum(len(r.register_writes) for r in rs)
        hits = sum(h[2] is not None for r in rs for h in r.table_hits)
        moved = sum(r.get_meta("head_delta") != 0 or r.get_meta("tail_delta") != 0
                    for r in rs)
        actions = {r.action for r in rs}
        reasons = {r.punt_reason for r in rs}
        score = (0.05 * n <= faults <= 0.5 * n) + (punts <= 0.7 * n) + (writes > 0) \
            + (hits > 0) + (moved > 0) + (len(actions) >= 2) + (O.PUNT_HEADROOM_FAULT in reasons)
        if score == 7:
            return doc
        if best is None or score > best[0]:
            best = (score, doc)
    assert best is not None
    return best[1]
