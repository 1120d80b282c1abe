"""The abstract interpreter: packet ranges, nullness, variable offsets, loops, calls."""

from __future__ import annotations

from functools import cache

from ebpf.analysis import Region, analyze
from ebpf.loader.elf import load
from tests.conftest import corpus_object
from tests.ebpf.analysis import asm_program

BOUNDS = """
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 34
    jgt %r4, %r3, out
    ldxb %r0, [%r2+20]
    ldxb %r0, [%r2+40]
out:
    mov %r0, 2
    exit
"""


@cache
def corpus(name: str, program: str | None = None):
    obj = load(corpus_object(name))
    return analyze(obj.get_program(program), obj)


def test_bounds_check_proves_packet_range():
    """After `if data + 34 > data_end goto out`, data+20 is in range and data+40 is not."""
    an = analyze(asm_program(BOUNDS))
    st = an.state_before(5)
    assert st.reg(2).kind is Region.PACKET and st.proven("data") == 34
    assert an.state_before(4).proven("data") == 0
    (near,) = an.accesses(5)
    (far,) = an.accesses(6)
    assert near.region is Region.PACKET and near.value == 20 and near.in_range
    assert far.value == 40 and far.in_range is False
    assert an.state_before(7).reg(3).kind is Region.PACKET_END


def test_map_value_is_null_until_checked():
    """A lookup result is maybe-NULL; `if r0 == 0` clears it in r0 and its copy r6."""
    an = analyze(asm_program("""
        stw [%r10-4], 0
        mov %r2, %r10
        add %r2, -4
        lddw %r1, map_idx 0
        call 1
        mov %r6, %r0
        jeq %r0, 0, out
        ldxdw %r1, [%r6+0]
    out:
        mov %r0, 2
        exit
    """))
    after = an.state_before(6)
    assert after.reg(0).kind is Region.MAP_VALUE and after.reg(0).null and after.reg(0).map == 0
    checked = an.state_before(8)
    assert not checked.reg(0).null and not checked.reg(6).null
    assert an.state_before(9).reg(0).null  # joined with the NULL path again
    (load_,) = an.accesses(8)
    assert load_.region is Region.MAP_VALUE and load_.value == 0 and not load_.null
    key = an.state_before(5).get_stack(0, -4, 4)
    assert key.num.is_const and key.num.value == 0


def test_branch_on_known_value_is_pruned():
    """A comparison that cannot hold makes its edge infeasible and its target unreachable."""
    an = analyze(asm_program("""
        mov %r1, 5
        jgt %r1, 10, never
        mov %r0, 2
        exit
    never:
        mov %r0, 1
        exit
    """))
    assert an.is_reachable(2) and not an.is_reachable(4)
    assert (0, 4) not in an.feasible_edges()
    assert an.return_value().values() == [2]


def test_spilled_packet_pointer_keeps_its_range():
    """A packet pointer stored to the stack and loaded back is still proven in range."""
    an = analyze(asm_program("""
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 14
        jgt %r4, %r3, out
        stxdw [%r10-8], %r2
        ldxdw %r5, [%r10-8]
        ldxh %r0, [%r5+12]
    out:
        mov %r0, 2
        exit
    """))
    (a,) = an.accesses(7)
    assert a.region is Region.PACKET and a.value == 12 and a.in_range
    assert an.stack_depth("prog") == 8


def test_variable_offsets_in_parser_counters():
    """Ethernet is read at constants; after VLANs and IHL the offsets vary, with bounds."""
    an = corpus("parser_counters")
    (proto,) = an.accesses(8)
    assert proto.is_constant and proto.value == 12 and proto.in_range
    (ihl,) = an.accesses(116)        # iph->ihl after 0, 1 or 2 VLAN tags
    assert not ihl.is_constant and ihl.offset.values() == [14, 18, 22] and ihl.in_range
    (doff,) = an.accesses(168)       # th->doff after IPv4 options
    assert doff.region is Region.PACKET and not doff.is_constant
    assert (doff.offset.umin, doff.offset.umax) == (46, 94) and doff.in_range


def test_loop_bounds_and_bounded_offsets():
    """bpf2bpf_loop: sum_words runs 30 times, skip_ipv6_exthdrs 8; offsets stay bounded."""
    an = corpus("bpf2bpf_loop")
    trips = {lp.func: an.loop_trips(lp) for lp in an.cfg.iter_loops()}
    assert trips == {"sum_words": 30, "skip_ipv6_exthdrs": 8}
    (word,) = an.accesses(126)
    assert word.region is Region.PACKET and word.in_range and word.offset.umax == 570


def test_sub_programs_run_per_call_string():
    """Callees are analysed in their call strings; a pointer to the caller's frame works."""
    an = corpus("bpf2bpf_loop")
    assert an.contexts() == [(), (0,), (0, 63), (0, 63, 97), (0, 82)]
    (cs, st), = an.iter_states(132)  # skip_ipv6_exthdrs entry
    assert cs == (0, 82)
    off = st.reg(2)
    assert off.kind is Region.STACK and off.frame == 1 and st.reg(1).kind is Region.CTX
    assert an.max_stack_depth()[0] >= 4


def test_global_data_and_return_values():
    """Global variables are map values of the data sections; returns are verdict ranges."""
    an = corpus("globals")
    (a,) = an.accesses(5)  # __sync_fetch_and_add(&pkt_count, 1)
    assert a.region is Region.MAP_VALUE and a.atomic and an.get_map_name(a.map) == "globals.bss"
    assert corpus("xdp_drop").return_value().values() == [1]
    assert corpus("fib_router").return_value().contains(4)


def test_adjust_head_invalidates_packet_pointers():
    """After bpf_xdp_adjust_head the old packet pointers are gone and ranges reset."""
    an = corpus("katran_lb")
    call = next(s for s in an.reachable_slots() if an.insn_at[s].kind.value == "call"
                and an.insn_at[s].imm == 44)
    after = an.state_before(call + 1)
    assert after.proven("data") == 0
    assert all(v.kind is not Region.PACKET for _, v in after.iter_values())


def test_every_corpus_program_converges(corpus_obj):
    """Each corpus program is analysed; every packet access is bounded."""
    obj = load(corpus_obj)
    for prog in obj.programs:
        an = analyze(prog, obj)
        assert an.is_reachable(0)
        for a in an.iter_accesses():
            assert a.region is not Region.UNKNOWN, (prog.name, a)
            if a.region is Region.PACKET and a.helper is None:
                assert a.offset.umax < 4096, (prog.name, a)
