"""The worked example of docs/pipeline.md: drop IPv4, pass the rest, on scapy packets."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from hw.pipeline import PipelineModel, TimingModel, load_config, write_memory_images

EXAMPLE = Path(__file__).with_name("ipv4_drop.json")
PACKETS = [
    (Ether() / IP(dst="10.0.0.1") / TCP(dport=80), "drop"),
    (Ether() / IP() / UDP() / (b"x" * 1400), "drop"),
    (Ether() / IP() / ICMP(), "drop"),
    (Ether() / IPv6() / UDP(), "pass"),
    (Ether() / ARP(), "pass"),
    (Ether() / Dot1Q(vlan=5) / IP(), "pass"),  # the program reads only h_proto (0x8100)
]


@pytest.mark.parametrize("pkt,action", PACKETS, ids=[p.summary() for p, _ in PACKETS])
def test_example_on_scapy_packets(pkt, action):
    """IPv4 frames are dropped, everything else passes, packets unchanged."""
    raw = bytes(pkt)
    r = PipelineModel(load_config(EXAMPLE)).process(raw)
    assert r.action == action and r.verdict == {"drop": 1, "pass": 2}[action]
    assert r.packet_out == raw
    assert r.containers[0] == int.from_bytes(raw[12:14], "little")


def test_example_batch_and_timing():
    """A batch keeps state-free results; one stage: 55 cycles, one packet per clock."""
    model = PipelineModel(load_config(EXAMPLE))
    results = model.process_many([bytes(p) for p, _ in PACKETS])
    assert [r.action for r in results] == [a for _, a in PACKETS]
    t = TimingModel(model.config)
    assert (t.latency_cycles(), t.initiation_interval(64)) == (55, 1)


def test_example_images_match_the_document(tmp_path):
    """The image words printed in the worked example are the ones written."""
    write_memory_images(load_config(EXAMPLE), tmp_path)
    words = {(f, int(a)): w for f, a, w in _doc_words()}

    def word(name, addr):
        return (tmp_path / name).read_text().splitlines()[1 + addr]

    assert words, "worked example table not found in docs/pipeline.md"
    for (name, addr), w in words.items():
        assert word(name, addr) == w, (name, addr)


def _doc_words():
    doc = (Path(__file__).resolve().parents[3] / "docs" / "pipeline.md").read_text()
    section = doc[doc.index("## 12. Worked example"):doc.index("## 13.")]
    for line in section.splitlines():
        cells = [c.strip(" `") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith(".hex"):
            yield cells[0], cells[1], cells[2]
