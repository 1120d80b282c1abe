"""Traffic generation: sizes, rates, arrival processes, flows, representatives, replay."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import UDP
from scapy.layers.l2 import Ether

from sim.pcap import write_pcap
from sim.spec import parse_traffic
from sim.traffic import (
    TrafficError,
    from_pcap,
    generate,
    line_rate_pps,
    synthetic,
    zipf_probabilities,
)


def _gen(text: str, n: int, seed: int = 1, line: float = 100.0):
    return generate(parse_traffic(text, line_rate_gbps=line), n, seed, line_rate_gbps=line)


def test_imix_mean_size():
    """IMIX frames average (7*64 + 4*594 + 1518) / 12 = 361.83 B, nominal and drawn."""
    t = _gen("imix@40G", 300_000)
    assert parse_traffic("imix@40G").sizes.mean_bytes == pytest.approx(4342 / 12)
    assert t.size.mean() == pytest.approx(4342 / 12, rel=0.01)
    counts = np.bincount(t.size)[[64, 594, 1518]]
    assert counts / counts.sum() == pytest.approx([7 / 12, 4 / 12, 1 / 12], abs=0.005)


def test_line_rate_cbr():
    """64B@100G is back-to-back frames: 6.72 ns apart, 148.81 Mpps offered."""
    t = _gen("64B@100G", 10_000)
    assert t.offered_pps == pytest.approx(148.8095e6, rel=1e-6)
    assert line_rate_pps(64, 100) == pytest.approx(148.8095e6, rel=1e-6)
    assert np.array_equal(t.arrival_ns, (np.arange(10_000) * 672) // 100)


def test_cbr_constant_bit_rate_for_mixed_sizes():
    """CBR in Gb/s spaces each frame by its own wire time: IMIX at 100 % is back to back."""
    t = _gen("imix@100%", 5000)
    wire_ns = (np.maximum(t.size, 64) + 20) * 8 / 100
    gaps = np.diff(t.arrival_ns)
    assert np.all(np.abs(gaps - wire_ns[:-1]) <= 1)
    assert t.arrival_ns[-1] == int(wire_ns[:-1].sum())


def test_poisson_interarrival_mean_and_variance():
    """Poisson arrivals: exponential gaps, mean 1/rate and variance mean squared."""
    t = _gen("512B@20Mpps,poisson", 400_000)
    gaps = np.diff(t.arrival_ns).astype(np.float64)
    assert gaps.mean() == pytest.approx(50.0, rel=0.01)
    assert gaps.var() == pytest.approx(50.0 ** 2, rel=0.03)
    assert np.all(gaps >= 0)


def test_onoff_gates_the_source():
    """onoff(1us,4us): nothing starts in an off period; the mean rate is a fifth."""
    t = _gen("64B@100G,onoff(1us,4us)", 20_000)
    phase = t.arrival_ns % 5000
    assert phase.max() < 1000
    assert t.offered_pps == pytest.approx(148.8095e6 / 5, rel=1e-6)
    mean_rate = (len(t.arrival_ns) - 1) / (t.arrival_ns[-1] - t.arrival_ns[0]) * 1e9
    assert mean_rate == pytest.approx(t.offered_pps, rel=0.01)


def test_zipf_popularity_by_rank():
    """Zipf flows: flow k is drawn with probability proportional to (k + 1) ** -s."""
    t = _gen("64B@10G,flows=100,zipf=1.1", 500_000)
    counts = np.bincount(t.flow, minlength=100)
    expected = zipf_probabilities(100, 1.1) * len(t.flow)
    assert counts[:10] == pytest.approx(expected[:10], rel=0.03)
    assert list(np.argsort(-counts[:5], kind="stable")) == [0, 1, 2, 3, 4]
    assert counts[0] / counts[1] == pytest.approx(2 ** 1.1, rel=0.03)


def test_uniform_flows_by_default():
    """Without zipf every flow is equally likely."""
    t = _gen("64B@10G,flows=8", 80_000)
    assert np.bincount(t.flow, minlength=8) / 80_000 == pytest.approx([1 / 8] * 8, abs=0.01)


def test_determinism_by_seed():
    """The same seed gives the same columns and the same representative bytes."""
    a = _gen("imix@40G,poisson,flows=50,zipf=1,proto=tcp/udp/icmp6", 20_000, seed=5)
    b = _gen("imix@40G,poisson,flows=50,zipf=1,proto=tcp/udp/icmp6", 20_000, seed=5)
    c = _gen("imix@40G,poisson,flows=50,zipf=1,proto=tcp/udp/icmp6", 20_000, seed=6)
    for col in ("arrival_ns", "size", "flow", "rep"):
        assert np.array_equal(getattr(a, col), getattr(b, col))
    assert a.reps == b.reps
    assert not np.array_equal(a.arrival_ns, c.arrival_ns)
    assert not np.array_equal(a.flow, c.flow)


def test_sizes_do_not_depend_on_the_arrival_process():
    """Each column has its own random stream: switching to Poisson keeps sizes and flows."""
    a = _gen("imix@40G,flows=50", 5000, seed=2)
    b = _gen("imix@40G,poisson,flows=50", 5000, seed=2)
    assert np.array_equal(a.size, b.size) and np.array_equal(a.flow, b.flow)


def test_representatives_match_sizes_and_protocols():
    """A packet's representative has its protocol and its frame size minus the FCS."""
    t = _gen("mix(64:1,1518:1)@10G,flows=20,proto=tcp", 2000)
    for i in range(0, 2000, 97):
        rep = t.reps[t.rep[i]]
        assert len(rep) == t.size[i] - 4
        assert Ether(rep).haslayer("TCP")
    # one flow keeps its variant: all its packets of one size share a representative
    f0 = t.flow == t.flow[0]
    same_size = f0 & (t.size == t.size[0])
    assert len(set(t.rep[same_size].tolist())) == 1


def test_percent_needs_line_rate():
    """A percentage without a line rate cannot be generated."""
    with pytest.raises(TrafficError, match="a percentage needs the line rate"):
        synthetic(parse_traffic("64B@50%"), 10)


def _capture(tmp_path, times_s):
    from scapy.layers.inet import IP
    from scapy.utils import wrpcap

    pkts = []
    for i, ts in enumerate(times_s):
        p = Ether() / IP(src="10.0.0.1", dst=f"10.0.0.{2 + i % 3}") / UDP(sport=1000 + i % 3,
                                                                         dport=53)
        p.time = ts
        pkts.append(p)
    wrpcap(str(tmp_path / "t.pcap"), pkts)
    return tmp_path / "t.pcap"


def test_pcap_replay_timestamps(tmp_path):
    """A capture replays at its own timestamps, relative to the first; flows by 5-tuple."""
    path = _capture(tmp_path, [10.0, 10.000001, 10.000003, 10.000010])
    t = from_pcap(path)
    assert list(t.arrival_ns) == [0, 1000, 3000, 10000]
    assert list(t.size) == [42 + 4] * 4
    assert len(set(t.flow.tolist())) == 3
    assert t.reps[t.rep[0]] == bytes(Ether(t.reps[t.rep[0]]))


def test_pcap_rescaled_and_looped(tmp_path):
    """@rate re-scales the timestamps to the mean rate; more packets loop the capture."""
    path = _capture(tmp_path, [0.0, 0.001, 0.002, 0.003])
    t = generate(parse_traffic(f"pcap:{path}@1Mpps"), 12, line_rate_gbps=100)
    assert list(t.arrival_ns[:4]) == [0, 1000, 2000, 3000]
    assert list(t.arrival_ns[4:8]) == [4000, 5000, 6000, 7000]
    assert t.offered_pps == pytest.approx(1e6)


def test_pcap_equal_timestamps_need_a_rate(tmp_path):
    """A capture whose timestamps are all equal cannot replay without a rate."""
    path = _capture(tmp_path, [5.0, 5.0, 5.0])
    with pytest.raises(TrafficError, match="all 3 timestamps are equal"):
        from_pcap(path)


def test_pcap_empty(tmp_path):
    """An empty capture is an error naming the file."""
    write_pcap(tmp_path / "e.pcap", [])
    with pytest.raises(TrafficError, match=r"e\.pcap: the capture holds no packets"):
        from_pcap(tmp_path / "e.pcap")


def test_each_flow_has_its_own_five_tuple():
    """Every flow carries its own 5-tuple (scapy reads it back); packets of one flow and size
    are the same bytes; frames are padded to their size minus the FCS."""
    from scapy.layers.inet import IP

    t = generate(parse_traffic("imix@10G,flows=50"), 3000, seed=4)
    tuples: dict[int, tuple] = {}
    for i in range(t.num_packets):
        frame = t.reps[t.rep[i]]
        assert len(frame) == max(t.size[i] - 4, 42)
        pkt = Ether(frame)
        key = (pkt[IP].src, pkt[IP].dst, pkt[UDP].sport, pkt[UDP].dport)
        assert tuples.setdefault(int(t.flow[i]), key) == key
    assert len(set(tuples.values())) == len(tuples) > 40
