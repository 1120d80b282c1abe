"""ebpf.kernel.batch through KernelObject: array state read in batches, zeros left out."""

from __future__ import annotations

import pytest

from ebpf.kernel.bridge import KernelObject
from ebpf.kernel.load import bpf_permitted
from sim.packets import random_packets
from tests.huge_ring import build_ring, ring_slot

PERMITTED, REASON = bpf_permitted()
ENTRIES = 1 << 22


def slot(packet: bytes) -> int | None:
    return ring_slot(packet, ENTRIES)


needs_bpf = pytest.mark.skipif(not PERMITTED, reason=f"bpf(2) not usable: {REASON}")


@needs_bpf
def test_huge_array_dump_lists_the_entries_in_use(tmp_path):
    """A 4 M-entry array (several batches): the dump after runs lists exactly the slots set
    or counted, and load_state clears what the program wrote (found by the batch scan)."""
    obj, state, slots = build_ring(tmp_path, ENTRIES)
    packets = [p for p in random_packets(300, seed=1) if slot(p) in slots][:20]
    assert packets
    with KernelObject(obj, state=state) as k:
        assert k.dump_state(["hits"])["maps"]["hits"] == []  # fresh: nothing to list
        for p in packets:
            assert k.test_run(p).retval == 1  # XDP_DROP: the slot holds a real
        doc = k.dump_state(["ring", "hits"])["maps"]
        assert {int.from_bytes(bytes.fromhex(e["key"]), "little") for e in doc["ring"]} == slots
        counted = {slot(p) for p in packets}
        hits = {int.from_bytes(bytes.fromhex(e["key"]), "little"):
                int.from_bytes(bytes.fromhex(e["value"]), "little") for e in doc["hits"]}
        assert hits == {s: sum(slot(p) == s for p in packets) for s in counted}
        k.load_state({"maps": {"hits": [{"key": "07000000", "value": "05000000"}]}})
        assert k.dump_state(["hits"])["maps"]["hits"] == [{"key": "07000000",
                                                           "value": "05000000"}]
