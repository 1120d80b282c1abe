"""The traffic spec a person types: ``64B@100G``, ``imix@40G,poisson``, ``pcap:t.pcap@10G``.

Grammar (spaces around tokens are ignored, keywords are case-insensitive)::

    spec    = source [ "@" rate ] { "," option }
    source  = SIZE "B" | "imix" | "mix(" SIZE ":" WEIGHT { "," SIZE ":" WEIGHT } ")"
            | "pcap:" PATH
    rate    = NUMBER ( "G" | "Gbps" | "Gb/s" | "M" | "Mbps" | "Mb/s" )   wire bits per second
            | NUMBER ( "pps" | "Kpps" | "Mpps" | "Gpps" )                  frames per second
            | NUMBER "%"                                                   of the line rate
    option  = "cbr" | "poisson" | "onoff(" DURATION "," DURATION ")"
            | "flows=" INTEGER | "zipf=" NUMBER | "proto=" NAME [":" WEIGHT] { "/" ... }
    DURATION = NUMBER ( "ns" | "us" | "ms" | "s" )

Sizes are Ethernet frames with FCS (64B is the minimum frame, 1518B the largest untagged
one); Gb/s count the wire: 8 B preamble and SFD and the 12 B gap per frame, so ``64B@100G``
is 148.81 Mpps. Synthetic traffic needs a rate; a capture without one replays at its own
timestamps. ``onoff(on,off)``: the rate holds during ``on``, nothing is sent during ``off``.

Every problem is one ``TrafficSpecError`` line quoting the spec.
"""

from __future__ import annotations

import re

from sim.model import MAX_FRAME_BYTES
from sim.traffic import (
    PROTOCOLS,
    Rate,
    SizeDist,
    TrafficError,
    TrafficSpec,
)

MIN_SPEC_FRAME = 18  # a 14-byte Ethernet header (the least XDP sees) plus the FCS
_NUM = r"(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
_RATE_RE = re.compile(_NUM + r"\s*([A-Za-z/%]+)\Z")
_SIZE_RE = re.compile(r"(\d+)\s*B\Z", re.IGNORECASE)
_DUR_RE = re.compile(_NUM + r"\s*(ns|us|µs|ms|s)\Z", re.IGNORECASE)
_BITS = {"g": 1.0, "gbps": 1.0, "gb/s": 1.0, "m": 1e-3, "mbps": 1e-3, "mb/s": 1e-3}
_PPS = {"pps": 1.0, "kpps": 1e3, "mpps": 1e6, "gpps": 1e9}
_DUR_NS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
_TOLERANCE = 1e-9


# Modelling choice: flows are drawn per packet and the generator keeps arrays per flow, so
# more flows than the largest run's packets (sim.scenario.MAX_PACKETS) mean nothing.
MAX_FLOWS = 10_000_000

class TrafficSpecError(TrafficError):
    """A traffic spec that does not parse or asks for the impossible."""


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced ')'")
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ValueError("unbalanced '('")
    parts.append("".join(cur).strip())
    return parts


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what}: expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{what}: expected a finite number, got {text!r}")
    return value


def _frame(text: str, what: str = "size") -> int:
    size = int(text)
    if not MIN_SPEC_FRAME <= size <= MAX_FRAME_BYTES:
        raise ValueError(f"{what} {size} B: expected {MIN_SPEC_FRAME}..{MAX_FRAME_BYTES} "
                         f"bytes (a frame with FCS)")
    return size


def parse_size(text: str) -> SizeDist:
    """``64B``, ``imix`` or ``mix(64:7,594:4,1518:1)``."""
    low = text.strip().lower()
    m = _SIZE_RE.match(low)
    if m:
        return SizeDist.fixed(_frame(m.group(1)))
    if low == "imix":
        return SizeDist.imix()
    if low.startswith("mix(") and low.endswith(")"):
        pairs = [p.strip() for p in low[4:-1].split(",") if p.strip()]
        if not pairs:
            raise ValueError("mix(): expected SIZE:WEIGHT pairs, e.g. mix(64:7,1518:1)")
        if len(pairs) > 16:
            raise ValueError(f"mix(): at most 16 sizes, got {len(pairs)}")
        sizes, weights = [], []
        for pair in pairs:
            size, sep, weight = pair.partition(":")
            size = size.strip().removesuffix("b")
            if not sep or not size.isdigit():
                raise ValueError(f"mix(): expected SIZE:WEIGHT, got {pair!r}")
            w = _number(weight.strip(), f"mix() weight of {size} B")
            if w <= 0:
                raise ValueError(f"mix() weight of {size} B: expected > 0, got {w:g}")
            sizes.append(_frame(size))
            weights.append(w)
        if len(set(sizes)) != len(sizes):
            raise ValueError("mix(): a size is listed twice")
        pairs_text = ",".join(f"{s}:{w:g}" for s, w in zip(sizes, weights, strict=True))
        name = f"mix({pairs_text})"
        return SizeDist(tuple(sizes), tuple(weights), name)
    raise ValueError(f"unknown size {text.strip()!r} (expected a frame size like 64B, imix "
                     f"or mix(64:7,594:4,1518:1))")


def parse_rate(text: str) -> Rate:
    """``100G``, ``40Gbps``, ``20Mpps``, ``500Kpps``, ``50%``."""
    value, given = _quantity(_RATE_RE, text, "rate", "100G, 20Mpps or 50%")
    unit = given.lower()
    if unit == "%":
        if value > 100 * (1 + _TOLERANCE):
            raise ValueError(f"rate {value:g} % exceeds 100 % of the line rate")
        return Rate(value, "percent")
    if unit in _BITS:
        return Rate(value * _BITS[unit], "gbps")
    if unit in _PPS:
        return Rate(value * _PPS[unit], "pps")
    raise ValueError(f"unknown rate unit {given!r} in {text.strip()!r} (expected G, "
                     f"Gbps, M, Mbps, pps, Kpps, Mpps or %)")


def parse_duration_ns(text: str) -> float:
    """``1us``, ``500ns``, ``2ms``, ``1s``: nanoseconds."""
    value, unit = _quantity(_DUR_RE, text, "duration", "1us, 500ns")
    return value * _DUR_NS[unit.lower()]


def _quantity(pattern: re.Pattern[str], text: str, what: str, example: str
              ) -> tuple[float, str]:
    """(the positive number, its unit as written) of ``text`` matched by ``pattern``."""
    m = pattern.match(text.strip())
    if not m:
        raise ValueError(f"malformed {what} {text.strip()!r} (expected e.g. {example})")
    value = float(m.group(1))
    if value <= 0:
        raise ValueError(f"{what} {text.strip()!r}: must be positive")
    return value, m.group(2)


def _protocols(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for part in text.split("/"):
        name, sep, weight = part.strip().lower().partition(":")
        if name not in PROTOCOLS:
            raise ValueError(f"unknown protocol {name!r} (expected one of "
                             f"{', '.join(PROTOCOLS)})")
        w = _number(weight, f"weight of {name}") if sep else 1.0
        if w <= 0:
            raise ValueError(f"weight of {name}: expected > 0, got {w:g}")
        out.append((name, w))
    if len({n for n, _ in out}) != len(out):
        raise ValueError("proto=: a protocol is listed twice")
    return tuple(out)


def _option(opt: str, fields: dict) -> None:
    low = opt.lower()
    if low in ("cbr", "poisson"):
        fields["process"] = low
    elif low.startswith("onoff(") and low.endswith(")"):
        args = [a.strip() for a in opt[6:-1].split(",")]
        if len(args) != 2:
            raise ValueError(f"onoff(): expected two durations onoff(ON,OFF), got {opt!r}")
        fields["onoff_ns"] = (parse_duration_ns(args[0]), parse_duration_ns(args[1]))
    elif low.startswith("flows="):
        text = opt[6:].strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_FLOWS:
            raise ValueError(f"flows: expected an integer in 1..{MAX_FLOWS}, got {text!r}")
        fields["flows"] = int(text)
    elif low.startswith("zipf="):
        s = _number(opt[5:].strip(), "zipf")
        if s < 0:
            raise ValueError(f"zipf: expected an exponent >= 0, got {s:g}")
        fields["zipf"] = s
    elif low.startswith("proto="):
        fields["protocols"] = _protocols(opt[6:])
    elif not opt:
        raise ValueError("empty option (two commas in a row?)")
    else:
        raise ValueError(f"unknown option {opt!r} (expected cbr, poisson, onoff(ON,OFF), "
                         f"flows=N, zipf=S or proto=P[:W]/...)")


def _check_line_rate(spec: TrafficSpec, line_rate_gbps: float, where: str) -> None:
    rate = spec.rate
    if rate is None or rate.unit == "percent":
        return
    if spec.sizes is None:  # a capture: its sizes are only known when read
        if rate.unit != "gbps":
            return
        gbps = rate.value
        shown = f"rate {gbps:g} Gb/s"
    else:
        gbps = rate.gbps(spec.sizes.mean_wire_bytes, line_rate_gbps)
        shown = (f"rate {gbps:g} Gb/s" if rate.unit == "gbps" else
                 f"rate {rate.text} ({gbps:.4g} Gb/s on the wire with {spec.sizes.name} "
                 f"frames)")
    if gbps > line_rate_gbps * (1 + _TOLERANCE):
        raise ValueError(f"{shown} exceeds the {line_rate_gbps:g} Gb/s line rate of {where}")


def parse_traffic(text: str, *, line_rate_gbps: float | None = None,
                  where: str = "the link") -> TrafficSpec:
    """Parse a spec; with ``line_rate_gbps`` a rate above it is an error naming ``where``."""
    try:
        spec = _parse(text)
        if line_rate_gbps is not None:
            _check_line_rate(spec, line_rate_gbps, where)
    except ValueError as exc:
        raise TrafficSpecError(f"traffic {text.strip()!r}: {exc}") from None
    return spec


def _parse(text: str) -> TrafficSpec:
    if not text.strip():
        raise ValueError("empty spec (expected e.g. 64B@100G)")
    parts = _split_top(text.strip())
    head, options = parts[0], parts[1:]
    fields: dict = {"text": text.strip()}
    if head.lower().startswith("pcap:"):
        path, at, rate = head[5:].rpartition("@")
        if not at or not rate.strip() or not _RATE_RE.match(rate.strip()):
            path, rate = head[5:], ""
        if not path.strip():
            raise ValueError("pcap: expected a file, e.g. pcap:trace.pcap@10G")
        fields["pcap"] = path.strip()
        if rate.strip():
            fields["rate"] = parse_rate(rate)
    else:
        size, at, rate = head.partition("@")
        if not at:
            raise ValueError(f"expected SIZE@RATE (e.g. 64B@100G), got {head!r}")
        if not size.strip() or not rate.strip():
            raise ValueError(f"expected SIZE@RATE (e.g. 64B@100G), got {head!r}")
        fields["sizes"] = parse_size(size)
        fields["rate"] = parse_rate(rate)
    for opt in options:
        _option(opt.strip(), fields)
    if "pcap" in fields:
        for key in ("flows", "zipf", "protocols"):
            if key in fields:
                raise ValueError(f"{'proto' if key == 'protocols' else key}: flows and "
                                 f"protocols of a capture come from the capture")
        if fields.get("process") == "poisson":
            raise ValueError("poisson: a capture replays its own timestamps")
    return TrafficSpec(**fields)
