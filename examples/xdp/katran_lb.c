/* katran_lb.c: L4 load balancer in the style of Katran (our own code), IPv4 only.
 *
 * 1. vip_map (HASH) maps {vip address, port, proto} to a VIP index; no VIP: XDP_PASS.
 * 2. conn_table (LRU_HASH) remembers the real chosen for each 5-tuple, so a flow stays on its
 *    real while the ring changes; on a miss the 5-tuple is hashed (flow_hash below, a
 *    jhash-style 3-word mix) and ch_rings (ARRAY, RING_SIZE slots per VIP) picks the real
 *    index at vip_index * RING_SIZE + hash % RING_SIZE; the choice is then remembered.
 * 3. reals (ARRAY) maps the real index to its IPv4 address (0 = unset: XDP_DROP).
 * 4. The packet is encapsulated IP-in-IP: bpf_xdp_adjust_head grows the head by one IPv4
 *    header, a new Ethernet header (MACs swapped: back to the router it came from) and an
 *    outer IPv4 header (VIP -> real, protocol IPPROTO_IPIP, checksum computed) are written,
 *    and the frame leaves with XDP_TX.
 * VLAN-tagged frames, IPv4 with options and fragments are passed to the stack.
 */
#include "common.h"

#define MAX_VIPS 64
#define RING_SIZE 61		/* slots per VIP; a prime spreads hash % RING_SIZE evenly */
#define MAX_REALS 256
#define MAX_FLOWS 65536
#define OUTER_TTL 64

struct vip_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS);
	__type(key, struct vip_key);
	__type(value, __u32);	/* vip index < MAX_VIPS */
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_VIPS * RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);	/* real index < MAX_REALS */
} ch_rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, __be32);	/* real's IPv4 address */
} reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, __u32);	/* real index */
} conn_table SEC(".maps");

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> (32 - shift));
}

/* Three words in, one out: add-rotate-xor rounds in the manner of Bob Jenkins' lookup3
 * final mix, seeded with the golden-ratio constant.
 */
static __always_inline __u32 flow_hash(__u32 a, __u32 b, __u32 c)
{
	const __u32 seed = 0x9e3779b9 + (3 << 2);

	a += seed;
	b += seed;
	c += seed;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static __always_inline int pick_real(struct flow_key *flow, __u32 vip_index, __u32 *real_index)
{
	__u32 *cached, *slot, ring_key, hash;

	cached = bpf_map_lookup_elem(&conn_table, flow);
	if (cached) {
		*real_index = *cached;
		return 0;
	}
	hash = flow_hash(flow->saddr, flow->daddr,
			 ((__u32)flow->sport << 16 | flow->dport) ^ flow->proto);
	ring_key = vip_index * RING_SIZE + hash % RING_SIZE;
	slot = bpf_map_lookup_elem(&ch_rings, &ring_key);
	if (!slot)
		return -1;
	*real_index = *slot;
	bpf_map_update_elem(&conn_table, flow, real_index, BPF_ANY);
	return 0;
}

SEC("xdp")
int xdp_katran_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 old_dst[ETH_ALEN], old_src[ETH_ALEN];
	struct ethhdr *eth = data, *new_eth;
	struct iphdr *iph, *outer, hdr;
	struct flow_key flow;
	struct vip_key vip;
	__u32 *vip_index, real_index;
	__be32 *real_addr;
	__u16 inner_len;
	__u8 inner_tos;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;
	if (iph->version != 4 || iph->ihl != 5 || ipv4_is_fragment(iph))
		return XDP_PASS;

	__builtin_memset(&flow, 0, sizeof(flow));
	flow.saddr = iph->saddr;
	flow.daddr = iph->daddr;
	flow.proto = iph->protocol;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = (void *)(iph + 1);

		if ((void *)(th + 1) > data_end)
			return XDP_DROP;
		flow.sport = th->source;
		flow.dport = th->dest;
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = (void *)(iph + 1);

		if ((void *)(uh + 1) > data_end)
			return XDP_DROP;
		flow.sport = uh->source;
		flow.dport = uh->dest;
	} else {
		return XDP_PASS;
	}

	vip.addr = flow.daddr;
	vip.port = flow.dport;
	vip.proto = flow.proto;
	vip.pad = 0;
	vip_index = bpf_map_lookup_elem(&vip_map, &vip);
	if (!vip_index)
		return XDP_PASS;
	if (pick_real(&flow, *vip_index, &real_index) < 0)
		return XDP_DROP;
	real_addr = bpf_map_lookup_elem(&reals, &real_index);
	if (!real_addr || !*real_addr)
		return XDP_DROP;

	/* Everything needed from the old headers, before adjust_head invalidates the pointers. */
	__builtin_memcpy(old_dst, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(old_src, eth->h_source, ETH_ALEN);
	inner_len = bpf_ntohs(iph->tot_len);
	inner_tos = iph->tos;

	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	new_eth = data;
	outer = (void *)(new_eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;

	__builtin_memcpy(new_eth->h_dest, old_src, ETH_ALEN);
	__builtin_memcpy(new_eth->h_source, old_dst, ETH_ALEN);
	new_eth->h_proto = bpf_htons(ETH_P_IP);

	__builtin_memset(&hdr, 0, sizeof(hdr));
	hdr.version = 4;
	hdr.ihl = 5;
	hdr.tos = inner_tos;
	hdr.tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
	hdr.ttl = OUTER_TTL;
	hdr.protocol = IPPROTO_IPIP;
	hdr.saddr = flow.daddr;
	hdr.daddr = *real_addr;
	hdr.check = ipv4_hdr_csum20(&hdr);
	*outer = hdr;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
