"""The results of a packet stream as columns: verdicts, metadata lengths and outputs in
numpy arrays and one byte buffer, a ``PacketResult`` built only when one is asked for.

Building a Python object and a ``bytes`` per packet costs more than running most XDP
programs natively (``ebpf.compiled``), so a stream's results are kept the way the batch
driver writes them: ``verdict[i]``, ``meta_len[i]``, and packet i's output
(``data_meta .. data_end``) at ``data[start[i]:start[i] + length[i]]``, followed by
``tails[i]`` when the packet had fragments the program did not touch. ``redirect`` holds the
redirect target of the XDP_REDIRECT packets that have one; ``kernel_ns`` the kernel's own
ns per packet (kernel backend only).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


class ResultColumns(Sequence[Any]):
    """Results of packets 0 .. n-1 in order; ``self[i]`` is packet i's ``PacketResult``."""

    def __init__(self, verdict: np.ndarray, meta_len: np.ndarray, start: np.ndarray,
                 length: np.ndarray, data: bytes, *, tails: dict[int, bytes] | None = None,
                 redirect: dict[int, Any] | None = None,
                 kernel_ns: np.ndarray | None = None) -> None:
        self.verdict = verdict
        self.meta_len = meta_len
        self.start = start
        self.length = length
        self.data = data
        self.tails = tails or {}
        self.redirect = redirect or {}
        self.kernel_ns = kernel_ns

    @classmethod
    def from_results(cls, results: Sequence[Any]) -> ResultColumns:
        """Columns of ``PacketResult`` objects (the backends that make them one by one)."""
        outs = [r.packet_out for r in results]
        length = np.fromiter(map(len, outs), dtype=np.int64, count=len(outs))
        start = np.zeros(len(outs), dtype=np.int64)
        np.cumsum(length[:-1], out=start[1:])
        ns = [r.kernel_ns for r in results]
        kernel_ns = None if not ns or any(x is None for x in ns) else \
            np.asarray(ns, dtype=np.int64)
        return cls(np.fromiter((r.verdict for r in results), dtype=np.int64,
                               count=len(results)),
                   np.fromiter((r.meta_len for r in results), dtype=np.int64,
                               count=len(results)),
                   start, length, b"".join(outs),
                   redirect={i: r.redirect for i, r in enumerate(results)
                             if r.redirect is not None},
                   kernel_ns=kernel_ns)

    def __len__(self) -> int:
        return len(self.verdict)

    def packet_out(self, i: int) -> bytes:
        """Packet i's output: data_meta .. data_end, fragments included."""
        a = int(self.start[i])
        out = self.data[a:a + int(self.length[i])]
        tail = self.tails.get(i)
        return out if tail is None else out + tail

    def __getitem__(self, i: Any) -> Any:
        from ebpf.executor import PacketResult

        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return PacketResult(int(self.verdict[i]), self.packet_out(i), int(self.meta_len[i]),
                            self.redirect.get(i), None,
                            None if self.kernel_ns is None else int(self.kernel_ns[i]))

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))


class ColumnsBuilder:
    """``ResultColumns`` assembled in stream order from spans (many packets whose outputs
    sit in one buffer) and single results."""

    def __init__(self) -> None:
        self._verdict: list[np.ndarray] = []
        self._meta: list[np.ndarray] = []
        self._start: list[np.ndarray] = []
        self._length: list[np.ndarray] = []
        self._data: list[bytes] = []
        self._size = 0  # bytes of data so far
        self.n = 0
        self.tails: dict[int, bytes] = {}
        self.redirect: dict[int, Any] = {}

    def add_span(self, verdict: np.ndarray, meta_len: np.ndarray, start: np.ndarray,
                 length: np.ndarray, data: bytes) -> None:
        """Packets ``n .. n + len(verdict)``; their ``start`` offsets are into ``data``
        (copied arrays: the caller's buffers may be reused)."""
        self._verdict.append(np.array(verdict, dtype=np.int64))
        self._meta.append(np.array(meta_len, dtype=np.int64))
        self._start.append(np.asarray(start, dtype=np.int64) + self._size)
        self._length.append(np.array(length, dtype=np.int64))
        self._data.append(data)
        self._size += len(data)
        self.n += len(verdict)

    def add_one(self, verdict: int, packet_out: bytes, meta_len: int,
                redirect: Any = None) -> None:
        """The next packet, one result."""
        if redirect is not None:
            self.redirect[self.n] = redirect
        self.add_span(np.array([verdict]), np.array([meta_len]), np.zeros(1, np.int64),
                      np.array([len(packet_out)]), bytes(packet_out))

    def build(self) -> ResultColumns:
        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

        return ResultColumns(cat(self._verdict), cat(self._meta), cat(self._start),
                             cat(self._length), b"".join(self._data), tails=self.tails,
                             redirect=self.redirect)


TailRecord = tuple[int, str, int, "str | None", int]
"""One ``ebpf.vm.trace.TailCall`` as a tuple: (slot, map, index, target, path_index)."""


def tail_records(tail_calls: Sequence[Any]) -> tuple[TailRecord, ...]:
    """A trace's ``tail_calls`` as ``TailRecord`` tuples (hashable: part of a path's key)."""
    return tuple((t.slot, t.map, t.index, t.target, t.path_index) for t in tail_calls)


class PathColumns:
    """Per packet of a stream: the instructions it executed (``steps``) and which distinct
    basic-block path it took (``path_id``, an index into ``paths``; each path as the VM's
    ``Trace.path``: the entry slot 0, then every slot control landed on, and after a tail
    call the target's entry 0 and its slots). ``tail_calls[j]``: path j's tail calls as the
    trace's ``tail_calls`` (``TailRecord`` tuples; empty for most): which program each
    segment of the path ran in. Two paths are the same only with the same tail calls."""

    def __init__(self, steps: np.ndarray, path_id: np.ndarray, paths: list[tuple[int, ...]],
                 tails: list[tuple[TailRecord, ...]] | None = None):
        self.steps = steps
        self.path_id = path_id
        self.paths = paths
        self.tail_calls = tails if tails is not None else [()] * len(paths)

    def __len__(self) -> int:
        return len(self.steps)


class PathsBuilder:
    """``PathColumns`` in stream order, the distinct paths interned as they appear."""

    def __init__(self) -> None:
        self._ids: dict[Any, int] = {}  # bytes of the entries (, tail records)
        self.paths: list[tuple[int, ...]] = []
        self.tail_calls: list[tuple[TailRecord, ...]] = []
        self._steps: list[np.ndarray] = []
        self._path_id: list[np.ndarray] = []

    def intern(self, entries: np.ndarray | list[int],
               tails: tuple[TailRecord, ...] = ()) -> int:
        """The id of the path ``[0, *entries]`` (``entries``: the slots after the entry)
        with the tail calls ``tails``."""
        arr = np.asarray(entries, dtype=np.uint64)
        key: Any = (arr.tobytes(), tails) if tails else arr.tobytes()
        k = self._ids.get(key)
        if k is None:
            k = self._ids[key] = len(self.paths)
            self.paths.append((0, *arr.tolist()))
            self.tail_calls.append(tails)
        return k

    def add_span(self, steps: np.ndarray, log: np.ndarray, start: np.ndarray,
                 length: np.ndarray, prefix: dict[int, list[int]],
                 tails: dict[int, tuple[TailRecord, ...]] | None = None) -> None:
        """Packets whose steps are ``steps`` and whose path entries after the entry are
        ``prefix.get(k, []) + log[start[k]:start[k] + length[k]]``, with the tail calls
        ``tails.get(k, ())`` (a tail call that fell through: the path stays in one
        program)."""
        ids = np.empty(len(steps), dtype=np.int32)
        get, intern = self._ids.get, self.intern
        tails = tails or {}
        for k, (a, n) in enumerate(zip(start.tolist(), length.tolist(), strict=True)):
            before = prefix.get(k)
            if before:
                ids[k] = intern([*before, *log[a:a + n].tolist()], tails.get(k, ()))
                continue
            calls = tails.get(k)
            key = (log[a:a + n].tobytes(), calls) if calls else log[a:a + n].tobytes()
            j = get(key)
            ids[k] = j if j is not None else intern(log[a:a + n], calls or ())
        self._steps.append(np.array(steps, dtype=np.int64))
        self._path_id.append(ids)

    def add_one(self, path: list[int], steps: int, tail_calls: Sequence[Any] = ()) -> None:
        """The next packet, from a VM trace's ``path``, ``insns`` and ``tail_calls``."""
        self._steps.append(np.array([steps], dtype=np.int64))
        self._path_id.append(np.array([self.intern(path[1:], tail_records(tail_calls))],
                                      dtype=np.int32))

    def build(self) -> PathColumns:
        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        return PathColumns(cat(self._steps, np.int64), cat(self._path_id, np.int32),
                           self.paths, self.tail_calls)
