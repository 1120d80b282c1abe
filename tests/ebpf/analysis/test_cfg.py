"""ebpf.analysis.cfg: basic blocks, dominators and loops of hand-assembled programs and the corpus."""

from __future__ import annotations

import pytest

from ebpf.analysis import CfgError, build_cfg, dominators
from ebpf.loader.elf import load
from tests.conftest import corpus_object
from tests.ebpf.analysis import asm_program

DIAMOND = """
    mov %r0, 0
    jeq %r1, 0, else
    mov %r0, 1
    ja join
else:
    mov %r0, 2
join:
    exit
"""

LOOP = """
    mov %r0, 0
    mov %r2, 10
head:
    jeq %r2, 0, done
    add %r0, %r2
    sub %r2, 1
    ja head
done:
    exit
"""


def test_diamond_blocks_and_dominators():
    """An if/else splits into four blocks; the entry dominates all, neither arm the join."""
    f = build_cfg(asm_program(DIAMOND)).get_function("prog")
    assert sorted(f.blocks) == [0, 2, 4, 5]
    assert f.blocks[0].term == "branch" and f.blocks[0].succs == (2, 4)
    assert f.blocks[2].term == "jump" and f.blocks[2].succs == (5,)
    assert f.blocks[4].term == "fall" and f.blocks[5].term == "exit"
    assert f.idom == {0: 0, 2: 0, 4: 0, 5: 0}
    assert f.dominates(0, 5) and not f.dominates(2, 5) and not f.dominates(4, 5)
    assert f.exits == [5] and f.loops == ()


def test_natural_loop_from_back_edge():
    """A counted loop: the back edge goes to the header, which dominates the body."""
    f = build_cfg(asm_program(LOOP)).get_function("prog")
    assert sorted(f.blocks) == [0, 2, 3, 6]
    (loop,) = f.loops
    assert loop.header == 2 and loop.latches == (3,) and loop.body == {2, 3}
    assert loop.exits == ((2, 6),) and loop.reducible
    assert f.dominates(2, 3) and list(f.iter_dominators(3)) == [3, 2, 0]


def test_irreducible_cycle_is_reported():
    """Two entries into one cycle make a loop without a dominating header."""
    f = build_cfg(asm_program("""
        jeq %r1, 0, b
    a:
        add %r1, 1
    b:
        jne %r1, 5, a
        exit
    """)).get_function("prog")
    assert [(lp.reducible, sorted(lp.body)) for lp in f.loops] == [(False, [1, 2])]


def test_calls_and_tail_calls_end_blocks():
    """A local call ends its block and names the callee; so does a tail call."""
    prog = asm_program("""
        call local sub
        mov %r2, 0
        call 12
        mov %r0, 2
        exit
    sub:
        mov %r0, 1
        exit
    """, functions={"sub": 5})
    cfg = build_cfg(prog)
    main = cfg.get_function("prog")
    assert main.blocks[0].term == "call" and main.blocks[0].callee == "sub"
    assert main.blocks[1].term == "tail" and main.blocks[1].succs == (3,)
    assert cfg.call_sites() == [(0, "prog", "sub")]
    assert cfg.contexts() == {(): "prog", (0,): "sub"}
    assert cfg.block_of(6).func == "sub"


def test_jump_out_of_function_is_an_error():
    """A jump past the end of its function is reported with the slot."""
    prog = asm_program("ja +1\nexit\nexit\n", functions={"f": 2})
    with pytest.raises(CfgError, match="slot 0: jump target 2"):
        build_cfg(prog)


def test_dominators_on_a_graph():
    """Cooper-Harvey-Kennedy on a textbook graph with a loop back to the entry's child."""
    succs = {1: [2], 2: [3, 4], 3: [5], 4: [5], 5: [2, 6], 6: []}
    rpo, idom = dominators(1, succs)
    assert rpo[0] == 1 and set(rpo) == set(succs)
    assert idom == {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 5}


def test_corpus_loops_and_call_strings():
    """bpf2bpf_loop: loops in sum_words and skip_ipv6_exthdrs, three levels of calls."""
    cfg = build_cfg(load(corpus_object("bpf2bpf_loop")).programs[0])
    assert sorted(lp.func for lp in cfg.iter_loops()) == ["skip_ipv6_exthdrs", "sum_words"]
    names = cfg.contexts()
    assert max(len(cs) for cs in names) == 3
    assert set(names.values()) == set(cfg.functions)


def test_every_corpus_block_is_straight_line(corpus_obj):
    """Blocks tile each function: every slot in one block, jumps only at block ends."""
    for prog in load(corpus_obj).programs:
        cfg = build_cfg(prog)
        starts = prog.get_slot_offsets()
        covered = sorted(s for b in cfg.iter_blocks() for s in b.slots)
        assert covered == starts
        for b in cfg.iter_blocks():
            for s in b.slots[:-1]:
                assert prog.insns[starts.index(s)].kind.value not in ("ja", "jcond", "exit")
