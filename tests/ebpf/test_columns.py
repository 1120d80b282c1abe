"""ResultColumns: per-packet results kept as columns give back the same PacketResults."""

from __future__ import annotations

import numpy as np

from ebpf.columns import ColumnsBuilder, PathsBuilder, ResultColumns
from ebpf.executor import PacketResult
from ebpf.vm.trace import Redirect


def test_from_results_round_trip():
    """Columns made from results return each result's verdict, bytes, metadata length,
    redirect and kernel ns, in order, with negative indices and slices."""
    redirect = Redirect("devmap", 3, 0, "m")
    results = [PacketResult(2, b"abc", 0, kernel_ns=5), PacketResult(4, b"mmxyz", 2, redirect,
                                                                     kernel_ns=7),
               PacketResult(1, b"", 0, kernel_ns=9)]
    cols = ResultColumns.from_results(results)
    assert len(cols) == 3 and cols.verdict.tolist() == [2, 4, 1]
    assert list(cols) == results
    assert cols[-2] == results[1] and cols[1:] == results[1:]
    assert cols[1].packet == b"xyz"


def test_builder_spans_tails_and_singles():
    """A span's offsets are into its own buffer; a tail is appended to its packet's bytes;
    single results keep their place in the order."""
    b = ColumnsBuilder()
    b.add_one(2, b"first", 0)
    b.add_span(np.array([1, 3]), np.array([0, 4]), np.array([0, 2]), np.array([2, 6]),
               b"aa" + b"metabb")
    b.tails[2] = b"-tail"
    b.add_one(4, b"last", 0, redirect="r")
    cols = b.build()
    assert [cols.packet_out(i) for i in range(4)] == [b"first", b"aa", b"metabb-tail", b"last"]
    assert cols.meta_len.tolist() == [0, 0, 4, 0] and cols.redirect == {3: "r"}


def test_paths_builder_interns_paths_in_order():
    """Each distinct path gets the next id at its first packet; a packet's path is the
    entry slot 0, its entries moved out early (prefix), then its entries in the log."""
    b = PathsBuilder()
    log = np.array([5, 9, 5, 9, 7, 5, 9], dtype=np.uint64)
    b.add_span(np.array([10, 10, 3]), log, np.array([0, 2, 4]), np.array([2, 2, 1]), {})
    b.add_span(np.array([12, 10]), log, np.array([4, 5]), np.array([1, 2]), {0: [5, 9]})
    b.add_one([0, 5, 9], 10)
    cols = b.build()
    assert cols.paths == [(0, 5, 9), (0, 7), (0, 5, 9, 7)]
    assert cols.path_id.tolist() == [0, 0, 1, 2, 0, 0]
    assert cols.steps.tolist() == [10, 10, 3, 12, 10, 10]


def test_paths_with_other_tail_calls_are_other_paths():
    """The same slots with other tail calls (another target, one that fell through) are
    another path; the same slots and tail calls are the same path, whether they come from
    the log, a prefix or a trace (``add_one``)."""
    from ebpf.columns import tail_records
    from ebpf.vm.trace import TailCall

    tcp, udp = (TailCall(4, "jmp", 6, "xdp_tcp", 3), TailCall(4, "jmp", 17, "xdp_udp", 3))
    missing = TailCall(4, "jmp", 1, None, 3)
    b = PathsBuilder()
    log = np.array([4, 0, 2, 4, 0, 2, 4], dtype=np.uint64)
    b.add_span(np.array([9, 9, 9, 5]), log, np.array([0, 3, 3, 6]), np.array([3, 3, 3, 1]),
               {1: []}, {0: tail_records([tcp]), 1: tail_records([udp]),
                         2: tail_records([tcp])})
    b.add_span(np.array([9, 5]), log, np.array([4, 6]), np.array([2, 1]), {0: [4]},
               {0: tail_records([udp]), 1: tail_records([missing])})
    b.add_one([0, 4, 0, 2], 9, [tcp])
    cols = b.build()
    assert cols.paths == [(0, 4, 0, 2), (0, 4, 0, 2), (0, 4), (0, 4)]
    assert cols.tail_calls == [tail_records([tcp]), tail_records([udp]), (),
                               tail_records([missing])]
    assert cols.path_id.tolist() == [0, 1, 0, 2, 1, 3, 0]
