"""The Python model's pieces as oracles for unit testbenches (hw/pipeline/model.py).

Units are checked against the model's own code, not a re-implementation, through its public
API: a ``PacketState`` carries the PHV and window the model works on, and the model's
helpers (window index, ``adjust_outcome``, output) are called on it. Fields a test sets (head, end, containers,
window bytes) are set on that object.
"""

from __future__ import annotations

from hw.pipeline import PipelineModel, load_config
from hw.pipeline import ops as O
from hw.pipeline.config import PipelineConfig
from hw.pipeline.model import PUNT_HEADER, PUNT_MAGIC, PUNT_VERSION, PacketState


def empty_config(target: dict | None = None) -> PipelineConfig:
    return load_config({"format": "xdp-offload-pipeline", "version": 1,
                        "target": target or {}})


def packet(config: PipelineConfig, data: bytes, *, ingress: int = 1, queue: int = 0
           ) -> PacketState:
    """The model's PHV and window of ``data`` as the parser makes them."""
    return PacketState(config, data, ingress, queue)


def model(config: PipelineConfig) -> PipelineModel:
    return PipelineModel(config)


def window_access(pk: PacketState, x: int, size: int) -> int | None:
    """Window index of packet offset x (from data), or None: the access faults."""
    return pk.window_index(x, size)


def window_load(pk: PacketState, x: int, size: int, signed: bool) -> int | None:
    idx = pk.window_index(x, size)
    if idx is None:
        return None
    v = int.from_bytes(pk.window[idx:idx + size], "little")
    return O.sext(v, 8 * size) if signed else v


def adjust(m: PipelineModel, pk: PacketState, name: str, b: int) -> tuple[int, str]:
    """(result, "ok" | "einval" | "fault") of adjh / adjt with operand B."""
    return m.adjust_outcome(pk, name, O.signed(b, 32))


def punt_frame(pk: PacketState, containers: tuple[int, ...], body: bytes) -> bytes:
    """The punt header the deparser puts in front of ``body`` (docs/pipeline.md 7)."""
    header = PUNT_HEADER.pack(PUNT_MAGIC, PUNT_VERSION, len(containers), pk.punt,
                              pk.ingress, pk.queue & 0xFFFF, int(pk.fault))
    return header + b"".join(v.to_bytes(8, "little") for v in containers) + body
