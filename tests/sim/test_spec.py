"""Traffic specs and scenario files: every form parses, every mistake is one line."""

from __future__ import annotations

import pytest

from sim.errors import SimError
from sim.scenario import Scenario, ScenarioError
from sim.spec import TrafficSpecError, parse_traffic
from sim.traffic import IMIX, Rate


def test_fixed_size_at_gbps():
    """64B@100G: one size, a wire rate in Gb/s, CBR, the default flows."""
    spec = parse_traffic("64B@100G")
    assert spec.sizes.sizes == (64,)
    assert spec.rate == Rate(100.0, "gbps")
    assert spec.process == "cbr" and spec.onoff_ns is None and spec.pcap is None


def test_imix_at_gbps():
    """imix@40G: the simple IMIX sizes and weights."""
    spec = parse_traffic("imix@40G")
    assert tuple(zip(spec.sizes.sizes, spec.sizes.weights, strict=True)) == tuple(
        (s, float(w)) for s, w in IMIX)
    assert spec.rate == Rate(40.0, "gbps")


def test_packet_rate_poisson():
    """512B@20Mpps,poisson: a packet rate and Poisson arrivals."""
    spec = parse_traffic("512B@20Mpps,poisson")
    assert spec.sizes.sizes == (512,)
    assert spec.rate == Rate(20e6, "pps")
    assert spec.process == "poisson"


def test_percent_of_line_rate():
    """1500B@50%: half the line rate, resolved against the target later."""
    spec = parse_traffic("1500B@50%", line_rate_gbps=100)
    assert spec.rate == Rate(50.0, "percent")
    assert spec.rate.gbps(spec.sizes.mean_wire_bytes, 100) == pytest.approx(50.0)


def test_onoff_bursts():
    """64B@100G,onoff(1us,4us): on and off durations in ns, duty cycle 1/5."""
    spec = parse_traffic("64B@100G,onoff(1us,4us)", line_rate_gbps=100)
    assert spec.onoff_ns == (1000.0, 4000.0)
    assert spec.duty == pytest.approx(0.2)


def test_pcap_with_rate():
    """pcap:trace.pcap@10G: a capture re-scaled to a rate."""
    spec = parse_traffic("pcap:trace.pcap@10G")
    assert spec.pcap == "trace.pcap" and spec.rate == Rate(10.0, "gbps")
    assert spec.sizes is None


def test_pcap_without_rate():
    """pcap:dir/t.pcap: replay at the captured timestamps."""
    spec = parse_traffic("pcap:dir/t.pcap")
    assert spec.pcap == "dir/t.pcap" and spec.rate is None


def test_flows_and_zipf():
    """,flows=1000,zipf=1.1 sets the flow count and the popularity exponent."""
    spec = parse_traffic("64B@100G,flows=1000,zipf=1.1")
    assert spec.flows == 1000 and spec.zipf == pytest.approx(1.1)


def test_protocol_mix_and_size_mix():
    """mix(...) sizes and proto= weights."""
    spec = parse_traffic("mix(64:7,1518:1)@10G,proto=tcp:7/udp:2/icmp")
    assert spec.sizes.sizes == (64, 1518) and spec.sizes.weights == (7.0, 1.0)
    assert spec.protocols == (("tcp", 7.0), ("udp", 2.0), ("icmp", 1.0))


def test_units_and_spaces():
    """Rate units in their spellings; spaces around tokens are ignored."""
    assert parse_traffic("64B@40Gbps").rate == Rate(40.0, "gbps")
    assert parse_traffic("64B@500M").rate == Rate(0.5, "gbps")
    assert parse_traffic(" 64B @ 500Kpps , poisson ").rate == Rate(500e3, "pps")


@pytest.mark.parametrize("text, message", [
    ("64B100G", r"traffic '64B100G': expected SIZE@RATE"),
    ("64B@", r"expected SIZE@RATE"),
    ("jumbo@10G", r"unknown size 'jumbo' \(expected a frame size like 64B, imix"),
    ("64B@10Q", r"unknown rate unit 'Q'"),
    ("64B@fast", r"malformed rate 'fast'"),
    ("64B@10G,bursty", r"unknown option 'bursty'"),
    ("64B@10G,onoff(1us)", r"onoff\(\): expected two durations"),
    ("64B@10G,onoff(1us,4parsecs)", r"malformed duration '4parsecs'"),
    ("64B@10G,flows=0", r"flows: expected an integer in 1\.\.10000000"),
    ("64B@10G,flows=99999999999", r"flows: expected an integer in 1\.\.10000000"),
    ("64B@10G,proto=sctp", r"unknown protocol 'sctp'"),
    ("8B@10G", r"size 8 B: expected 18\.\.65535 bytes"),
    ("64B@10G,onoff(1us,2us", r"unbalanced '\('"),
    ("64B@150%", r"rate 150 % exceeds 100 % of the line rate"),
    ("pcap:t.pcap@10G,poisson", r"poisson: a capture replays its own timestamps"),
    ("", r"empty spec"),
])
def test_malformed(text, message):
    """Each malformed spec is one TrafficSpecError line quoting the problem."""
    with pytest.raises(TrafficSpecError, match=message) as info:
        parse_traffic(text)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, SimError)


def test_rate_above_line_rate():
    """A Gb/s rate above the target's line rate names both rates and the target."""
    with pytest.raises(TrafficSpecError, match=r"rate 120 Gb/s exceeds the 100 Gb/s line "
                       r"rate of target 'pipe'"):
        parse_traffic("64B@120G", line_rate_gbps=100, where="target 'pipe'")


def test_packet_rate_above_line_rate():
    """A packet rate is converted to wire Gb/s with the frame size before the check."""
    with pytest.raises(TrafficSpecError, match=r"rate 200 Mpps \(134\.4 Gb/s on the wire "
                       r"with 64B frames\) exceeds the 100 Gb/s line rate of the link"):
        parse_traffic("64B@200Mpps", line_rate_gbps=100)
    parse_traffic("64B@148.8Mpps", line_rate_gbps=100)  # just below: fine


def test_line_rate_exactly():
    """Exactly the line rate is allowed."""
    parse_traffic("64B@100G", line_rate_gbps=100)
    parse_traffic("1500B@100%", line_rate_gbps=100)


# --- scenario files -----------------------------------------------------------------------

def test_scenario_file(tmp_path):
    """A TOML scenario sets program (relative to the file), traffic, queues and NIC cost."""
    (tmp_path / "s.toml").write_text(
        'program = "prog.o"\ntarget = "nfp"\ntraffic = "imix@40G"\npackets = 5000\n'
        'seed = 7\nengine = "simpy"\nhost_cores = 3\n'
        '[queues]\nnic = 64\nlink = 0\n[nic]\npasses = 2\npunt = "none"\n')
    sc = Scenario.load(tmp_path / "s.toml")
    assert sc.program == str(tmp_path / "prog.o")
    assert (sc.target, sc.traffic, sc.packets, sc.seed, sc.engine, sc.host_cores) == (
        "nfp", "imix@40G", 5000, 7, "simpy", 3)
    assert sc.queues["nic"] == 64 and sc.queues["link"] is None
    assert sc.queues["host_ring"] == 1024
    assert sc.nic_cost.passes == 2 and sc.nic_cost.punt == "none"


@pytest.mark.parametrize("body, message", [
    ('packets = -1\n', r"s\.toml: packets: expected an integer in 1\.\.10000000, got -1"),
    ('engine = "turbo"\n', r"s\.toml: engine: expected one of fast, simpy, got 'turbo'"),
    ('colour = "red"\n', r"s\.toml: colour: unknown key"),
    ('[queues]\nnic = "big"\n', r"s\.toml: queues\.nic: expected an integer in 0\.\."),
    ('[nic]\npunt = "some"\n', r"s\.toml: nic\.punt: expected one of none, all, helpers"),
    ('program = \n', r"s\.toml: TOML syntax error"),
])
def test_scenario_errors(tmp_path, body, message):
    """A bad scenario file is one ScenarioError line naming the file and the key."""
    (tmp_path / "s.toml").write_text(body)
    with pytest.raises(ScenarioError, match=message):
        Scenario.load(tmp_path / "s.toml")
