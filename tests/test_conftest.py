"""The oracle requirements of tests/conftest.py: a ``kernel`` or ``rtl`` test skips when its
tool is missing and fails instead under REQUIRE_BPF=1 / REQUIRE_RTL=1, and so does a skip
raised inside such a test. Each case runs a small pytest session with the real hooks and
the tool probes replaced."""

from __future__ import annotations

import pytest

import tests.conftest as conftest

INNER_CONFTEST = """
from tests.conftest import pytest_runtest_makereport, pytest_runtest_setup  # noqa: F401

def pytest_configure(config):
    config.addinivalue_line("markers", "kernel: needs bpf(2)")
    config.addinivalue_line("markers", "rtl: needs the RTL tools")
"""
INNER_TESTS = """
import pytest

@pytest.mark.kernel
def test_kernel():
    pass

@pytest.mark.rtl
def test_simulator():
    pass

@pytest.mark.rtl("yosys")
def test_yosys():
    pass

@pytest.mark.kernel
def test_kernel_skips_inside():
    pytest.skip("the BPF JIT is off")

@pytest.fixture
def images():
    pytest.skip("no images")

@pytest.mark.rtl
def test_simulator_fixture_skips(images):
    pass

def test_unmarked_skip():
    pytest.skip("unrelated")
"""


@pytest.fixture
def session(pytester, monkeypatch):
    """Run the inner session with ``absent`` tools missing and ``env`` set."""
    def run(absent: set[str], env: dict[str, str]):
        probes = {tool: (lambda t=tool: f"{t} gone for the test" if t in absent else None)
                  for tool in conftest.PROBES}
        monkeypatch.setattr(conftest, "PROBES", probes)
        for name in ("REQUIRE_BPF", "REQUIRE_RTL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        conftest.missing.cache_clear()
        pytester.makeconftest(INNER_CONFTEST)
        pytester.makepyfile(test_inner=INNER_TESTS)
        try:
            return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist",
                                                "-rA")
        finally:
            conftest.missing.cache_clear()
    return run


def test_tools_present_tests_run(session):
    """Every tool present, nothing required: marked tests run; skips inside them stay skips."""
    result = session(set(), {})
    result.assert_outcomes(passed=3, skipped=3)


def test_missing_tools_skip_with_the_reason(session):
    """bpf(2) and the simulator missing: their tests skip saying why; yosys's test runs."""
    result = session({"bpf", "simulator"}, {})
    result.assert_outcomes(passed=1, skipped=5)
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] *bpf gone for the test"])


def test_require_bpf_turns_kernel_skips_into_failures(session):
    """REQUIRE_BPF=1 with bpf(2) missing: the kernel tests fail (at setup, or from a skip
    inside the test); RTL and unmarked skips are untouched."""
    result = session({"bpf", "simulator"}, {"REQUIRE_BPF": "1"})
    result.assert_outcomes(passed=1, skipped=3, errors=2)
    result.stdout.fnmatch_lines(["*REQUIRE_BPF=1 and bpf gone for the test*"])


def test_require_bpf_fails_a_skip_inside_a_kernel_test(session):
    """REQUIRE_BPF=1, bpf(2) usable: a kernel test that skips in its body fails."""
    result = session(set(), {"REQUIRE_BPF": "1"})
    result.assert_outcomes(passed=3, skipped=2, failed=1)
    result.stdout.fnmatch_lines(["*REQUIRE_BPF=1 and the test skipped: the BPF JIT is off*"])


def test_require_rtl_fails_a_skip_inside_an_rtl_test(session):
    """REQUIRE_RTL=1, tools present: an RTL test whose fixture skips fails; the kernel
    test's own skip stays a skip (REQUIRE_BPF is not set)."""
    result = session(set(), {"REQUIRE_RTL": "1"})
    result.assert_outcomes(passed=3, skipped=2, errors=1)
    result.stdout.fnmatch_lines(["*REQUIRE_RTL=1 and the test skipped*no images*"])


def test_require_rtl_with_yosys_missing(session):
    """REQUIRE_RTL=1 and yosys missing: the synthesis test fails, the simulator's pass."""
    result = session({"yosys"}, {"REQUIRE_RTL": "1"})
    result.assert_outcomes(passed=2, skipped=2, errors=2)
