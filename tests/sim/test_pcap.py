"""Capture files: round trip, and malformed input as one PcapError naming the file."""

from __future__ import annotations

import struct

import pytest

from sim.errors import PcapError
from sim.packets import random_packets
from sim.pcap import read_pcap, write_pcap


def test_round_trip(tmp_path):
    """Packets written to a pcap read back byte for byte."""
    packets = random_packets(50, seed=3)
    write_pcap(tmp_path / "t.pcap", packets)
    assert [p.data for p in read_pcap(tmp_path / "t.pcap")] == packets


def test_not_a_pcap(tmp_path):
    """A file that is not a capture is named in the error."""
    path = tmp_path / "junk.pcap"
    path.write_bytes(b"this is not a capture" * 4)
    with pytest.raises(PcapError, match="junk.pcap: not a readable pcap"):
        read_pcap(path)


def test_truncated_record(tmp_path):
    """A capture cut inside a packet record is an error, not a short packet."""
    write_pcap(tmp_path / "t.pcap", random_packets(3, seed=1))
    data = (tmp_path / "t.pcap").read_bytes()
    (tmp_path / "cut.pcap").write_bytes(data[:24 + 16 + 10])
    with pytest.raises(PcapError, match="cut.pcap: packet 1: packet has been truncated"):
        read_pcap(tmp_path / "cut.pcap")


def test_missing(tmp_path):
    """A missing capture is named."""
    with pytest.raises(PcapError, match="nope.pcap: no such file"):
        read_pcap(tmp_path / "nope.pcap")


def test_nanosecond_timestamps_are_exact(tmp_path):
    """A nanosecond pcap's epoch timestamps read back to the nanosecond (no float rounding).
    The file is written by hand: magic 0xa1b23c4d, then (sec, nsec, caplen, len) records."""
    stamps = [(1700000000, 123456789), (1700000000, 123456790), (1799999999, 999999999)]
    frame = random_packets(1, seed=1)[0]
    data = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    for sec, nsec in stamps:
        data += struct.pack("<IIII", sec, nsec, len(frame), len(frame)) + frame
    (tmp_path / "ns.pcap").write_bytes(data)
    got = [p.time_ns for p in read_pcap(tmp_path / "ns.pcap")]
    assert got == [sec * 10**9 + nsec for sec, nsec in stamps]
