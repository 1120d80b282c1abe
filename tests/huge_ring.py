"""A 32 M-entry array program (a consistent-hash ring, as production load balancers declare
them) and a state that fills the ring slots a seeded trace hits: shared by the tests that
check map state is sparse end to end (ebpf.kernel.batch, the offload commands)."""

from __future__ import annotations

import json
from pathlib import Path

from sim.packets import random_packets
from tests.conftest import compile_bpf

RING_ENTRIES = 32 << 20

RING_SOURCE = r"""
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} hits SEC(".maps");

SEC("xdp")
int xdp_ring(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u32 slot = (ip->saddr ^ ip->daddr) & (RING_ENTRIES - 1);
	__u32 *real = bpf_map_lookup_elem(&ring, &slot);
	if (!real || *real == 0)
		return XDP_PASS;
	__u32 *count = bpf_map_lookup_elem(&hits, &slot);
	if (count)
		*count += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
"""


def ring_slot(packet: bytes, entries: int = RING_ENTRIES) -> int | None:
    """The ring index the program computes for an IPv4 frame (addresses loaded as
    little-endian u32, as on x86), None for other frames."""
    if len(packet) < 34 or packet[12:14] != b"\x08\x00":
        return None
    return (int.from_bytes(packet[26:30], "little")
            ^ int.from_bytes(packet[30:34], "little")) & (entries - 1)


def build_ring(tmp_path: Path, entries: int = RING_ENTRIES) -> tuple[Path, Path, set[int]]:
    """(object, state file named after it, the slots the state fills) for a ring of
    ``entries`` (a power of two): every third packet of random_packets(2000, seed=1) (the
    mapper's default trace) gets its slot filled."""
    obj = compile_bpf(tmp_path, RING_SOURCE.replace("RING_ENTRIES", f"{entries}u"), "ring")
    slots = {s for p in random_packets(2000, seed=1)[::3]
             if (s := ring_slot(p, entries)) is not None}
    doc = {"maps": {"ring": [{"key": s.to_bytes(4, "little").hex(),
                              "value": (1 + s % 7).to_bytes(4, "little").hex()}
                             for s in sorted(slots)]}}
    state = tmp_path / "ring.json"
    state.write_text(json.dumps(doc))
    return obj, state, slots
