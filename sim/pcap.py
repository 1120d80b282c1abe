"""Reading and writing capture files (pcap / pcapng) through scapy."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sim.errors import PcapError


@dataclass(frozen=True)
class CapturedPacket:
    data: bytes
    time_ns: int  # capture timestamp, integer nanoseconds since the epoch


def read_pcap(path: str | os.PathLike[str]) -> list[CapturedPacket]:
    """Every packet of a pcap or pcapng file; PcapError names the file on any problem."""
    import scapy.layers.l2  # noqa: F401  (registers the Ethernet link type)
    from scapy.error import Scapy_Exception
    from scapy.utils import PcapReader

    path = os.fspath(path)
    if not Path(path).is_file():
        raise PcapError(f"{path}: no such file")
    packets: list[CapturedPacket] = []
    warnings = _Warnings()
    logger = logging.getLogger("scapy.runtime")
    saved = logger.handlers[:], logger.propagate, logger.level, logger.disabled
    # collect, do not print; whatever level another library left the logger at
    logger.handlers, logger.propagate, logger.level, logger.disabled = \
        [warnings], False, logging.WARNING, False
    try:
        with PcapReader(path) as reader:
            for pkt in reader:
                packets.append(CapturedPacket(bytes(pkt), _time_ns(pkt.time)))
                if warnings.messages:  # scapy only logs a record cut short by the file end
                    raise PcapError(f"{path}: packet {len(packets)}: "
                                    f"{warnings.messages[0].lower()}")
    except (Scapy_Exception, EOFError, OSError, ValueError, TypeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PcapError(f"{path}: not a readable pcap: {detail}") from exc
    finally:
        logger.handlers, logger.propagate, logger.level, logger.disabled = saved
    return packets


def _time_ns(time_s: Any) -> int:
    """A capture timestamp (scapy gives seconds as a Decimal) in integer nanoseconds,
    exactly: through a float, epoch nanoseconds would round to about 238 ns."""
    return int(Decimal(time_s) * 1_000_000_000)


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().removeprefix("Pcap: "))


def write_pcap(path: str | os.PathLike[str], packets: list[bytes]) -> None:
    """Write Ethernet frames to a pcap, whole or not at all."""
    import secrets

    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    path = Path(path)
    # not mkstemp (mode 0600): created 0666 so that the kernel applies the user's umask
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise PcapError(f"{path}: cannot write: {exc.strerror}") from exc
    try:
        wrpcap(tmp, [Ether(p) for p in packets], linktype=1)
        os.replace(tmp, path)
    except OSError as exc:
        raise PcapError(f"{path}: cannot write: {exc.strerror}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
