"""The PHV as one integer, and the one description of its layout (docs/pipeline.md 4).

The RTL moves a PHV between units as one flat vector; testbenches of units that take or
give a PHV (parser, stage, deparser) pack and unpack it here. ``FIELDS`` is the layout;
the offsets of rtl/pipe_defs.vh are generated from it (``python -m rtl_models.tbkit.phv``
rewrites the marked block; tests/rtl/test_phv_layout.py fails when the file differs).
``PhvLayout.from_target`` takes the parameters from a ``TargetParams``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hw.pipeline.config import TargetParams

POS_BITS = 18  # head, end, zero_from: signed; the spec's 16 bits plus room for 64 KiB frames
M64 = (1 << 64) - 1

FIELDS: tuple[tuple[str, str, str], ...] = (
    ("cont", "PHV_CONT", "64 * NUM_CONTAINERS"), ("pred", "PHV_PRED", "PREDICATE_BITS"),
    ("verdict", "PHV_VERDICT", "32"), ("redirect", "PHV_REDIRECT", "32"),
    ("punt", "PHV_PUNT", "32"), ("fault", "PHV_FAULT", "1"), ("pkt_len", "PHV_PKT_LEN", "16"),
    ("ingress", "PHV_INGRESS", "32"), ("queue", "PHV_QUEUE", "32"),
    ("head", "PHV_HEAD", "POS_BITS"), ("end", "PHV_END", "POS_BITS"),
    ("zero_from", "PHV_ZERO_FROM", "POS_BITS"), ("pass", "PHV_PASS", "8"),
    ("admit", "PHV_ADMIT", "64"), ("win", "PHV_WIN", "WIN_BITS"))
"""The PHV's fields, least significant first: (name, the Verilog offset localparam, the width
as a product of numbers and the including module's parameters)."""
BEGIN = "// BEGIN generated from rtl_models/tbkit/phv.py (python -m rtl_models.tbkit.phv)"
END = "// END generated"


def _width(expr: str, params: dict[str, int]) -> int:
    """The value of a width such as ``64 * NUM_CONTAINERS`` for the given parameters."""
    value = 1
    for term in expr.split("*"):
        term = term.strip()
        value *= int(term) if term.isdigit() else params[term]
    return value


def verilog_layout() -> str:
    """The localparams of pipe_defs.vh's generated block (without the markers)."""
    lines = [f"localparam POS_BITS = {POS_BITS};  // signed positions: the spec's 16 bits "
             "plus room for 64 KiB frames",
             "localparam WIN_BYTES = WINDOW_HEADROOM + WINDOW_BYTES;",
             "localparam WIN_BITS = 8 * WIN_BYTES;"]
    prev = None
    for _, param, width in FIELDS:
        lines.append(f"localparam {param} = {'0' if prev is None else ' + '.join(prev)};")
        prev = (param, width)
    lines.append(f"localparam PHV_BITS = {' + '.join(prev)};")
    return "\n".join(lines) + "\n"


def write_verilog(path: Path) -> bool:
    """Rewrite the generated block of ``path`` (pipe_defs.vh); True when it changed."""
    text = path.read_text()
    head, _, rest = text.partition(BEGIN + "\n")
    _, _, tail = rest.partition(END + "\n")
    new = head + BEGIN + "\n" + verilog_layout() + END + "\n" + tail
    if new != text:
        path.write_text(new)
    return new != text


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

    # field offsets: the generated block of pipe_defs.vh computes the same
    @property
    def win_bytes(self) -> int:
        return self.window_headroom + self.window_bytes

    def offsets(self) -> dict[str, tuple[int, int]]:
        """Field name -> (lowest bit, width); "total" -> (PHV bits, 0)."""
        params = {"NUM_CONTAINERS": self.num_containers, "PREDICATE_BITS": self.predicate_bits,
                  "POS_BITS": POS_BITS, "WIN_BITS": 8 * self.win_bytes}
        out, lo = {}, 0
        for name, _, width in FIELDS:
            bits = _width(width, params)
            out[name] = (lo, bits)
            lo += bits
        out["total"] = (lo, 0)
        return out

    @property
    def bits(self) -> int:
        return self.offsets()["total"][0]

    def empty(self) -> Phv:
        return Phv(containers=[0] * self.num_containers, window=bytearray(self.win_bytes))

    def pack(self, p: Phv) -> int:
        off = self.offsets()
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
        off = self.offsets()

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


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "rtl" / "pipe_defs.vh"
    print(f"{target}: {'rewritten' if write_verilog(target) else 'up to date'}")
