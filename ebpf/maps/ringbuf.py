"""BPF_MAP_TYPE_RINGBUF (part of ebpf.maps)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ebpf.errors import VmError
from ebpf.loader.program import MapDef
from ebpf.maps.base import (
    BPF_ANY,
    BPF_RB_FORCE_WAKEUP,
    BPF_RB_NO_WAKEUP,
    BPF_RINGBUF_HDR_SZ,
    EAGAIN,
    EINVAL,
    ENOTSUPP,
    PAGE_SIZE,
    RINGBUF_MAX_RECORD_SZ,
    BpfMap,
    OutputRecord,
)


# ---------------------------------------------------------------------------------------
# RINGBUF (kernel/bpf/ringbuf.c)
# ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class RingbufSample:
    """Space reserved by bpf_ringbuf_reserve: the program fills ``data``, then submits or
    discards it. ``length`` is the space taken in the ring, 8-byte header included."""

    data: bytearray
    pos: int
    length: int
    cpu: int
    state: str = "busy"  # busy | committed | discarded


class RingBuf(BpfMap):
    """BPF_MAP_TYPE_RINGBUF: max_entries is the capacity in bytes (a power of two, a
    multiple of the page size); key_size and value_size are 0.

    A record takes round_up(size + 8, 8) bytes. Reservation fails (NULL; bpf_ringbuf_output
    returns -EAGAIN) when the producer would get max_entries - 1 bytes or more ahead of the
    consumer or of the oldest record still reserved. Submitted records are appended to
    ``records`` at submit time; the space only comes back when user space ``consume``s,
    which reads in ring order and stops at a record still reserved.
    """

    type_name = "ringbuf"
    value_form = "none"

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self.records: list[OutputRecord] = []
        self._ring: list[RingbufSample] = []  # not yet consumed, in ring order
        self._producer = 0
        self._consumer = 0

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(0, (0,))
        size = self.max_entries
        if size & (size - 1) or size % PAGE_SIZE:
            self._bad_def(f"max_entries {size} must be a power of 2 and a multiple of "
                          f"{PAGE_SIZE}")

    def lookup(self, key: bytes, cpu: int = 0) -> None:
        return None

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        return -ENOTSUPP

    def delete(self, key: bytes) -> int:
        return -ENOTSUPP

    def get_next_key(self, key: bytes | None) -> bytes | None:
        return None

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter(())

    def clear(self) -> None:
        """Empty the ring and forget ``records`` (reserved samples become invalid)."""
        self.records.clear()
        self._ring.clear()
        self._producer = self._consumer = 0

    @property
    def avail_data(self) -> int:
        """Bytes between consumer and producer (bpf_ringbuf_query BPF_RB_AVAIL_DATA)."""
        return self._producer - self._consumer

    def reserve(self, size: int, flags: int = 0, cpu: int = 0) -> RingbufSample | None:
        """bpf_ringbuf_reserve: a zeroed sample of ``size`` bytes, or None."""
        self._check_cpu(cpu)
        if flags or size > RINGBUF_MAX_RECORD_SZ:
            return None
        length = (size + BPF_RINGBUF_HDR_SZ + 7) & ~7
        if length > self.max_entries:
            return None
        pending = next((s.pos for s in self._ring if s.state == "busy"), self._producer)
        new_producer = self._producer + length
        mask = self.max_entries - 1
        if new_producer - self._consumer > mask or new_producer - pending > mask:
            return None
        sample = RingbufSample(bytearray(size), self._producer, length, cpu)
        self._ring.append(sample)
        self._producer = new_producer
        return sample

    def _commit(self, sample: RingbufSample, state: str) -> None:
        if sample.state != "busy" or not any(s is sample for s in self._ring):
            raise VmError(f"map '{self.name}': ring buffer sample at {sample.pos} "
                          f"is not reserved (already {sample.state})")
        sample.state = state

    def submit(self, sample: RingbufSample, flags: int = 0) -> None:
        """bpf_ringbuf_submit: the record becomes visible (wakeup flags have no effect)."""
        self._commit(sample, "committed")
        self.records.append(OutputRecord(sample.cpu, bytes(sample.data)))

    def discard(self, sample: RingbufSample, flags: int = 0) -> None:
        """bpf_ringbuf_discard: the space stays taken until the consumer passes it."""
        self._commit(sample, "discarded")

    def output(self, data: bytes, flags: int = 0, cpu: int = 0) -> int:
        """bpf_ringbuf_output: -EINVAL for unknown flags, -EAGAIN when there is no room."""
        if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
            return -EINVAL
        sample = self.reserve(len(data), 0, cpu)
        if sample is None:
            return -EAGAIN
        sample.data[:] = data
        self.submit(sample, flags)
        return 0

    def consume(self) -> list[bytes]:
        """Read as user space does: submitted records in ring order, up to the first one
        still reserved; frees their space (and that of discarded records passed)."""
        out = []
        while self._ring and self._ring[0].state != "busy":
            sample = self._ring.pop(0)
            self._consumer += sample.length
            if sample.state == "committed":
                out.append(bytes(sample.data))
        return out


