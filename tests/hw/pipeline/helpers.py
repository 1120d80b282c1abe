"""Builders for small pipeline configurations and test packets (not a test module)."""

from __future__ import annotations

from typing import Any

from hw.pipeline import PipelineModel, load_config

# a target with every ALU capability, so that each op can be tested
FULL = {"mul_max_bits": 64, "div": "full"}
VAL_OFF = 16  # packet offset of the first 8-byte test value


def doc(stages: list[dict[str, Any]], *, extracts: list[dict[str, int]] | None = None,
        target: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A configuration document with ``stages``; containers 0-3 extract values 0-3."""
    if extracts is None:
        extracts = [{"container": i, "offset": VAL_OFF + 8 * i, "size": 8} for i in range(4)]
    d: dict[str, Any] = {"format": "xdp-offload-pipeline", "version": 1,
                         "target": {**FULL, **(target or {})},
                         "parser": {"extracts": extracts}, "stages": stages}
    d.update(extra)
    return d


def frame(*values: int, length: int = 64) -> bytes:
    """An Ethernet-sized frame carrying ``values`` as u64 LE at offsets 16, 24, ..."""
    body = bytearray(max(length, VAL_OFF + 8 * len(values)))
    body[12:14] = b"\x08\x00"
    for i, v in enumerate(values):
        body[VAL_OFF + 8 * i:VAL_OFF + 8 * i + 8] = (v & (2**64 - 1)).to_bytes(8, "little")
    return bytes(body)


def model(stages: list[dict[str, Any]], **kw: Any) -> PipelineModel:
    return PipelineModel(load_config(doc(stages, **kw)))


def run_op(op: str, a: int = 0, b: int | None = None, *, imm: int | None = None,
           **fields: Any) -> int:
    """Container 4 after one op: A = container 0 = ``a``, B = container 1 = ``b`` or imm."""
    spec: dict[str, Any] = {"slot": 4, "op": op, "a": 0, **fields}
    if imm is not None:
        spec["imm"] = imm
    elif b is not None:
        spec["b"] = 1
    m = model([{"ops": [spec]}])
    return m.process(frame(a, b or 0)).containers[4]
