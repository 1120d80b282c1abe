"""Program types by ELF section name, as libbpf's section definitions assign them.

Each entry is (section name or prefix, program type, expected attach type). A name ending
in "/" or "+" matches as a prefix ("+" also matches the bare name), else exactly.
The legacy sloppy forms (e.g. "xdp/foo") are accepted as libbpf 0.x did.
"""

from __future__ import annotations

SECTION_TYPES: tuple[tuple[str, str, str | None], ...] = (
    ("xdp.frags/devmap", "xdp", "xdp_devmap"),
    ("xdp.frags/cpumap", "xdp", "xdp_cpumap"),
    ("xdp/devmap", "xdp", "xdp_devmap"),
    ("xdp/cpumap", "xdp", "xdp_cpumap"),
    ("xdp.frags", "xdp", "xdp"),
    ("xdp+", "xdp", "xdp"),
    ("socket+", "socket_filter", None),
    ("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
    ("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
    ("kprobe+", "kprobe", None),
    ("uprobe+", "kprobe", None),
    ("kretprobe+", "kprobe", None),
    ("uretprobe+", "kprobe", None),
    ("ksyscall+", "kprobe", None),
    ("kretsyscall+", "kprobe", None),
    ("usdt+", "kprobe", None),
    ("tc/ingress", "sched_cls", "tcx_ingress"),
    ("tc/egress", "sched_cls", "tcx_egress"),
    ("tcx/ingress", "sched_cls", "tcx_ingress"),
    ("tcx/egress", "sched_cls", "tcx_egress"),
    ("tc+", "sched_cls", None),
    ("classifier+", "sched_cls", None),
    ("action+", "sched_act", None),
    ("tracepoint+", "tracepoint", None),
    ("tp+", "tracepoint", None),
    ("raw_tracepoint+", "raw_tracepoint", None),
    ("raw_tp+", "raw_tracepoint", None),
    ("raw_tracepoint.w+", "raw_tracepoint_writable", None),
    ("raw_tp.w+", "raw_tracepoint_writable", None),
    ("tp_btf+", "tracing", "trace_raw_tp"),
    ("fentry+", "tracing", "trace_fentry"),
    ("fmod_ret+", "tracing", "modify_return"),
    ("fexit+", "tracing", "trace_fexit"),
    ("fentry.s+", "tracing", "trace_fentry"),
    ("fexit.s+", "tracing", "trace_fexit"),
    ("freplace+", "ext", None),
    ("lsm+", "lsm", "lsm_mac"),
    ("lsm.s+", "lsm", "lsm_mac"),
    ("iter+", "tracing", "trace_iter"),
    ("iter.s+", "tracing", "trace_iter"),
    ("syscall", "syscall", None),
    ("perf_event", "perf_event", None),
    ("lwt_in", "lwt_in", None),
    ("lwt_out", "lwt_out", None),
    ("lwt_xmit", "lwt_xmit", None),
    ("lwt_seg6local", "lwt_seg6local", None),
    ("sockops", "sock_ops", "cgroup_sock_ops"),
    ("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
    ("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
    ("sk_skb", "sk_skb", None),
    ("sk_msg", "sk_msg", "sk_msg_verdict"),
    ("lirc_mode2", "lirc_mode2", "lirc_mode2"),
    ("flow_dissector", "flow_dissector", "flow_dissector"),
    ("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    ("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"),
    ("cgroup/skb", "cgroup_skb", None),
    ("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
    ("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release"),
    ("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    ("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind"),
    ("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind"),
    ("cgroup/dev", "cgroup_device", "cgroup_device"),
    ("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
    ("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
    ("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    ("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
    ("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    ("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    ("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    ("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    ("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
    ("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
    ("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
    ("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
    ("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    ("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
    ("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
    ("struct_ops+", "struct_ops", None),
    ("struct_ops.s+", "struct_ops", None),
    ("sk_lookup", "sk_lookup", "sk_lookup"),
    ("netfilter", "netfilter", "netfilter"),
)


def program_type(section: str) -> tuple[str, str | None] | None:
    """(program type, attach type) for a section name, or None when libbpf knows none."""
    for pattern, prog_type, attach in SECTION_TYPES:
        if pattern.endswith("+"):
            base = pattern[:-1]
            if section == base or section.startswith(base + "/"):
                return prog_type, attach
        elif section == pattern or section.startswith(pattern + "/"):
            return prog_type, attach
    return None
