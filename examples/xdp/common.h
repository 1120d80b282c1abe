/* common.h: packet-parsing and checksum helpers shared by the XDP corpus.
 *
 * A parser advances a cursor through the packet and returns the next protocol, or -1 when a
 * header does not fit before data_end (every access is bounds-checked, so the verifier accepts
 * it). EtherTypes are returned in network byte order, IP protocol numbers as they are.
 * Checksum helpers work on 16-bit words as stored in the packet (one's-complement sums do not
 * care about byte order as long as the result is stored the way it was read).
 */
#ifndef XDP_COMMON_H
#define XDP_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* IPv4 fragment bits, host order (frag_off is big-endian in the header). */
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

/* <linux/icmp.h> drags in libc's <sys/socket.h> through <linux/if.h>, which does not build for
 * the bpf target: declare the ICMPv4 header and the echo types here.
 */
struct icmp4hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 sequence;
};

#define ICMP4_ECHOREPLY 0
#define ICMP4_ECHO 8

/* How many stacked VLAN tags parse_ethhdr walks through (802.1ad outer + 802.1Q inner). */
#define VLAN_MAX_DEPTH 2

/* struct vlan_hdr lives in the kernel's private headers, not the UAPI: declare our own. */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

struct hdr_cursor {
	void *pos;
};

static __always_inline int proto_is_vlan(__be16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

/* Ethernet plus up to VLAN_MAX_DEPTH tags. Stores the Ethernet header in *ethp and the number
 * of tags in *vlans; returns the inner EtherType (network order) or -1.
 */
static __always_inline int parse_ethhdr(struct hdr_cursor *c, void *data_end,
					struct ethhdr **ethp, int *vlans)
{
	struct ethhdr *eth = c->pos;
	struct vlan_hdr *vh;
	__be16 proto;
	int depth = 0;

	if ((void *)(eth + 1) > data_end)
		return -1;
	c->pos = eth + 1;
	*ethp = eth;
	proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!proto_is_vlan(proto))
			break;
		vh = c->pos;
		if ((void *)(vh + 1) > data_end)
			return -1;
		proto = vh->h_vlan_encapsulated_proto;
		c->pos = vh + 1;
		depth++;
	}
	*vlans = depth;
	return proto;
}

/* IPv4 header including options (ihl words). Returns the IP protocol or -1. */
static __always_inline int parse_iphdr(struct hdr_cursor *c, void *data_end, struct iphdr **iphp)
{
	struct iphdr *iph = c->pos;
	int hdrsize;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4)
		return -1;
	hdrsize = iph->ihl * 4;
	if (hdrsize < (int)sizeof(*iph))
		return -1;
	if (c->pos + hdrsize > data_end)
		return -1;
	c->pos += hdrsize;
	*iphp = iph;
	return iph->protocol;
}

/* Fixed IPv6 header (extension headers are left to the caller). Returns nexthdr or -1. */
static __always_inline int parse_ip6hdr(struct hdr_cursor *c, void *data_end,
					struct ipv6hdr **ip6hp)
{
	struct ipv6hdr *ip6h = c->pos;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	c->pos = ip6h + 1;
	*ip6hp = ip6h;
	return ip6h->nexthdr;
}

/* TCP header including options (doff words). Returns 0 or -1. */
static __always_inline int parse_tcphdr(struct hdr_cursor *c, void *data_end,
					struct tcphdr **tcphp)
{
	struct tcphdr *th = c->pos;
	int hdrsize;

	if ((void *)(th + 1) > data_end)
		return -1;
	hdrsize = th->doff * 4;
	if (hdrsize < (int)sizeof(*th))
		return -1;
	if (c->pos + hdrsize > data_end)
		return -1;
	c->pos += hdrsize;
	*tcphp = th;
	return 0;
}

static __always_inline int parse_udphdr(struct hdr_cursor *c, void *data_end,
					struct udphdr **udphp)
{
	struct udphdr *uh = c->pos;

	if ((void *)(uh + 1) > data_end)
		return -1;
	c->pos = uh + 1;
	*udphp = uh;
	return 0;
}

static __always_inline int ipv4_is_fragment(const struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(IP_MF | IP_OFFMASK)) != 0;
}

/* Fold a 32-bit one's-complement sum to 16 bits and complement it. */
static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word changing from old to new. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~old;
	sum += new;
	return csum_fold32(sum);
}

/* Checksum of a 20-byte IPv4 header (no options) whose check field is zero. */
static __always_inline __u16 ipv4_hdr_csum20(const struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	return csum_fold32(sum);
}

/* Decrement the IPv4 TTL and patch the header checksum (the TTL shares a word with the
 * protocol byte).
 */
static __always_inline void ipv4_decrement_ttl(struct iphdr *iph)
{
	__u16 *word = (__u16 *)&iph->ttl;
	__u16 old = *word;

	iph->ttl--;
	iph->check = csum_replace16(iph->check, old, *word);
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

#endif /* XDP_COMMON_H */
