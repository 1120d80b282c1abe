"""Reading array maps from the kernel in batches: only the entries that are not all zeros.

An array's every index exists, so walking it with BPF_MAP_GET_NEXT_KEY and one lookup per
index costs two system calls per declared entry (33 M entries: minutes, and gigabytes when
every value is kept). BPF_MAP_LOOKUP_BATCH (kernel/bpf/syscall.c generic_map_lookup_batch,
Linux 5.6) copies up to ``count`` keys and values per call; we keep a chunk at a time and
only the non-zero rows of it (numpy finds them), so memory is one chunk plus the entries
in use.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
from collections.abc import Iterator
from typing import Any

import numpy as np

# Bytes of values copied per call: large enough that the system-call count stays small
# (33 M four-byte values: 32 calls), small enough to be a modest buffer (modelling choice).
CHUNK_BYTES = 4 << 20


class BatchUnsupported(Exception):
    """The kernel refused BPF_MAP_LOOKUP_BATCH for this map (the caller walks instead)."""


def iter_nonzero(lib: Any, fd: int, key_size: int, row_bytes: int,
                 max_entries: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, raw value row) of every entry of an array map whose row is not all zeros.

    ``row_bytes`` is what one lookup returns (value_size, or stride x CPUs per-CPU).
    Raises BatchUnsupported when the first call fails with EINVAL / ENOTSUPP /
    EOPNOTSUPP, an OSError with the errno for any other failure.
    """
    rows = max(1, min(max_entries, CHUNK_BYTES // max(row_bytes, 1)))
    keys = ctypes.create_string_buffer(rows * key_size)
    values = ctypes.create_string_buffer(rows * row_bytes)
    in_batch = ctypes.create_string_buffer(max(key_size, 4))
    out_batch = ctypes.create_string_buffer(max(key_size, 4))
    first = True
    while True:
        count = ctypes.c_uint32(rows)
        err = lib.bpf_map_lookup_batch(fd, None if first else in_batch, out_batch, keys,
                                       values, ctypes.byref(count), None)
        if err < 0 and err != -errno_mod.ENOENT:
            if first and -err in (errno_mod.EINVAL, errno_mod.EOPNOTSUPP, 524):
                raise BatchUnsupported(f"lookup_batch: errno {-err}")
            raise OSError(-err, f"bpf_map_lookup_batch: {errno_mod.errorcode.get(-err, -err)}")
        n = count.value
        if n:
            grid = np.frombuffer(values, dtype=np.uint8, count=n * row_bytes)
            hits = np.flatnonzero(grid.reshape(n, row_bytes).any(axis=1))
            if len(hits):
                kraw, vraw = keys.raw, values.raw  # one copy per chunk, not per entry
                for i in map(int, hits):
                    yield (kraw[i * key_size:(i + 1) * key_size],
                           vraw[i * row_bytes:(i + 1) * row_bytes])
        if err == -errno_mod.ENOENT:
            return
        ctypes.memmove(in_batch, out_batch, key_size)
        first = False
