"""The PHV as one integer, laid out as rtl/pipe_defs.vh lays it out (keep the two in step).

The RTL moves a PHV between units as one flat vector; testbenches of units that take or
give a PHV (parser, stage, deparser) pack and unpack it here. Field widths and order are
those of pipe_defs.vh; ``PhvLayout.from_target`` takes them from a ``TargetParams``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hw.pipeline.config import TargetParams

POS_BITS = 18  # head, end, zero_from: signed (pipe_defs.vh POS_BITS)
M64 = (1 << 64) - 1


@dataclass
class Phv:
    """One PHV, field by field (positions signed, the window as bytes of H + W)."""

    containers: list[int]
    window: bytearray
    preds: int = 1
    verdict: int = 0
    redirect: int = 0
    punt: int = 0
    fault: bool = False
    pkt_len: int = 0
    ingress: int = 0
    queue: int = 0
    head: int = 0
    end: int = 0
    zero_from: int = 0
    pass_: int = 0
    admit: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PhvLayout:
    num_containers: int = 32
    predicate_bits: int = 64
    window_bytes: int = 256
    window_headroom: int = 64

    @classmethod
    def from_target(cls, t: TargetParams) -> PhvLayout:
        return cls(t.num_containers, t.predicate_bits, t.window_bytes, t.window_headroom)

    # field offsets, as pipe_defs.vh
    @property
    def win_bytes(self) -> int:
        return self.window_headroom + self.window_bytes

    def _offsets(self) -> dict[str, tuple[int, int]]:
        names = [("cont", 64 * self.num_containers), ("pred", self.predicate_bits),
                 ("verdict", 32), ("redirect", 32), ("punt", 32), ("fault", 1),
                 ("pkt_len", 16), ("ingress", 32), ("queue", 32), ("head", POS_BITS),
                 ("end", POS_BITS), ("zero_from", POS_BITS), ("pass", 8), ("admit", 64),
                 ("win", 8 * self.win_bytes)]
        out, lo = {}, 0
        for name, bits in names:
            out[name] = (lo, bits)
            lo += bits
        out["total"] = (lo, 0)
        return out

    @property
    def bits(self) -> int:
        return self._offsets()["total"][0]

    def empty(self) -> Phv:
        return Phv(containers=[0] * self.num_containers, window=bytearray(self.win_bytes))

    def pack(self, p: Phv) -> int:
        off = self._offsets()
        v = 0

        def put(name: str, value: int) -> None:
            nonlocal v
            lo, bits = off[name]
            v |= (value & ((1 << bits) - 1)) << lo

        put("cont", sum((c & M64) << (64 * i) for i, c in enumerate(p.containers)))
        put("pred", p.preds)
        put("verdict", p.verdict)
        put("redirect", p.redirect)
        put("punt", p.punt)
        put("fault", int(p.fault))
        put("pkt_len", p.pkt_len)
        put("ingress", p.ingress)
        put("queue", p.queue)
        put("head", p.head)
        put("end", p.end)
        put("zero_from", p.zero_from)
        put("pass", p.pass_)
        put("admit", p.admit)
        put("win", int.from_bytes(bytes(p.window), "little"))
        return v

    def unpack(self, v: int) -> Phv:
        off = self._offsets()

        def get(name: str, signed: bool = False) -> int:
            lo, bits = off[name]
            x = (v >> lo) & ((1 << bits) - 1)
            return x - (1 << bits) if signed and x >> (bits - 1) else x

        cont = get("cont")
        return Phv(containers=[(cont >> (64 * i)) & M64 for i in range(self.num_containers)],
                   window=bytearray(get("win").to_bytes(self.win_bytes, "little")),
                   preds=get("pred"), verdict=get("verdict"), redirect=get("redirect"),
                   punt=get("punt"), fault=bool(get("fault")), pkt_len=get("pkt_len"),
                   ingress=get("ingress"), queue=get("queue"), head=get("head", True),
                   end=get("end", True), zero_from=get("zero_from", True),
                   pass_=get("pass"), admit=get("admit"))

    def parse(self, packet: bytes, *, default_verdict: int = 0, ingress: int = 1,
              queue: int = 0, containers: list[int] | None = None) -> Phv:
        """The PHV the parser makes of ``packet`` (containers as given, default zero)."""
        p = self.empty()
        n = min(len(packet), self.window_bytes)
        p.window[self.window_headroom:self.window_headroom + n] = packet[:n]
        if containers is not None:
            p.containers = list(containers)
        p.verdict = default_verdict
        p.pkt_len = len(packet)
        p.ingress = ingress
        p.queue = queue
        p.end = p.zero_from = len(packet)
        return p
