"""The LPM_TRIE map (kernel/bpf/lpm_trie.c): longest-prefix match on (prefixlen, data) keys."""


from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ebpf.loader.program import MapDef
from ebpf.maps.base import (
    BPF_ANY,
    BPF_EXIST,
    BPF_NOEXIST,
    EEXIST,
    EINVAL,
    ENOENT,
    ENOSPC,
    BpfMap,
    _u32,
)


# ---------------------------------------------------------------------------------------
# LPM_TRIE (kernel/bpf/lpm_trie.c)
# ---------------------------------------------------------------------------------------
class LpmTrieMap(BpfMap):
    """BPF_MAP_TYPE_LPM_TRIE: key = u32 prefixlen (host order, little-endian) + data
    (network order, most significant bit first).

    An entry is identified by (prefixlen, the first prefixlen bits of data): bits beyond the
    prefix are ignored when matching but kept, as given by the latest update, in the stored
    key (get_next_key and dumps show them, like the kernel). Lookup returns the entry with
    the longest prefix, no longer than the lookup key's prefixlen, matching the key's data;
    a lookup prefixlen above 8 * data size matches nothing. Update: flags above BPF_EXIST
    or prefixlen above 8 * data size -> -EINVAL; BPF_NOEXIST on an existing prefix ->
    -EEXIST; BPF_EXIST on a missing one -> -ENOENT; a new prefix when full -> -ENOSPC.
    get_next_key walks the trie in postorder: more specific prefixes before the prefixes
    containing them, bit 0 subtrees before bit 1 subtrees. The kernel requires
    BPF_F_NO_PREALLOC at creation; we accept definitions without it.
    """

    type_name = "lpm_trie"

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self.data_size = self.key_size - 4
        self.max_prefixlen = 8 * self.data_size
        # (prefixlen, prefix bits as int) -> [stored key, value]
        self._entries: dict[tuple[int, int], tuple[bytes, bytearray]] = {}

    def _validate(self) -> None:
        super()._validate()
        if not 5 <= self.key_size <= 4 + 256:
            self._bad_def(f"key_size {self.key_size}, expected 4 + 1..256 data bytes")
        if self.value_size <= 0:
            self._bad_def(f"value_size {self.value_size} must be positive")

    def _split(self, key: bytes) -> tuple[int, int]:
        """(prefixlen, data as a big-endian integer)."""
        return _u32(key), int.from_bytes(key[4:], "big")

    def _ident(self, prefixlen: int, data: int) -> tuple[int, int]:
        return prefixlen, data >> (self.max_prefixlen - prefixlen)

    def lookup(self, key: bytes, cpu: int = 0) -> bytearray | None:
        prefixlen, data = self._split(self._key(key))
        if prefixlen > self.max_prefixlen:
            return None
        for plen in range(prefixlen, -1, -1):
            found = self._entries.get(self._ident(plen, data))
            if found is not None:
                return found[1]
        return None

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        key, data = self._update_args(key, value, cpu)
        if flags > BPF_EXIST:
            return -EINVAL
        prefixlen, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -EINVAL
        ident = self._ident(prefixlen, bits)
        found = self._entries.get(ident)
        if found is not None:
            if flags == BPF_NOEXIST:
                return -EEXIST
            found[1][:] = data
            self._entries[ident] = (key, found[1])
            return 0
        if flags == BPF_EXIST:
            return -ENOENT
        if len(self._entries) >= self.max_entries:
            return -ENOSPC
        self._entries[ident] = (key, bytearray(data))
        return 0

    def delete(self, key: bytes) -> int:
        prefixlen, bits = self._split(self._key(key))
        if prefixlen > self.max_prefixlen:
            return -EINVAL
        if self._entries.pop(self._ident(prefixlen, bits), None) is None:
            return -ENOENT
        return 0

    def _postorder(self) -> list[tuple[int, int]]:
        def order(ident: tuple[int, int]) -> str:
            plen, prefix = ident
            return (format(prefix, f"0{plen}b") if plen else "") + "2"

        return sorted(self._entries, key=order)

    def get_next_key(self, key: bytes | None) -> bytes | None:
        idents = self._postorder()
        if not idents:
            return None
        first = self._entries[idents[0]][0]
        if key is None:
            return first
        prefixlen, bits = self._split(self._key(key))
        if prefixlen > self.max_prefixlen:
            return first
        ident = self._ident(prefixlen, bits)
        if ident not in self._entries:
            return first
        i = idents.index(ident)
        return self._entries[idents[i + 1]][0] if i + 1 < len(idents) else None

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter([self._entries[ident] for ident in self._postorder()])

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
