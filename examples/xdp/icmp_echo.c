/* icmp_echo.c: answers IPv4 ICMP echo requests (ping) from XDP.
 *
 * An echo request (type 8, code 0) becomes an echo reply in place: Ethernet MACs swapped,
 * IPv4 source and destination swapped (the header checksum is unchanged, a one's-complement
 * sum does not depend on word order), ICMP type set to 0 with the ICMP checksum patched
 * incrementally (RFC 1624) for the type/code word, TTL reset to 64 (checksum patched), then
 * XDP_TX. Everything else, including fragmented requests, passes to the stack.
 */
#include "common.h"

#define REPLY_TTL 64

SEC("xdp")
int xdp_icmp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct icmp4hdr *icmp;
	struct ethhdr *eth;
	struct iphdr *iph;
	__u16 old_word, new_word;
	__be32 addr;
	int vlans, proto;

	proto = parse_ethhdr(&cur, data_end, &eth, &vlans);
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&cur, data_end, &iph);
	if (proto != IPPROTO_ICMP || ipv4_is_fragment(iph))
		return XDP_PASS;
	icmp = cur.pos;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	if (icmp->type != ICMP4_ECHO || icmp->code != 0)
		return XDP_PASS;

	swap_macs(eth);

	addr = iph->saddr;
	iph->saddr = iph->daddr;
	iph->daddr = addr;

	old_word = *(__u16 *)&iph->ttl;
	iph->ttl = REPLY_TTL;
	iph->check = csum_replace16(iph->check, old_word, *(__u16 *)&iph->ttl);

	old_word = *(__u16 *)icmp;
	icmp->type = ICMP4_ECHOREPLY;
	new_word = *(__u16 *)icmp;
	icmp->checksum = csum_replace16(icmp->checksum, old_word, new_word);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
