"""Shared fixtures: the built XDP corpus (make corpus), small ELF-patching helpers, and the
oracles a test needs (the kernel's bpf(2), the RTL tools), which skip or fail."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

# Hypothesis profiles. "ci" (the default, what `make test` runs): derandomized, so the same
# commit gives the same examples and the same result on every run; no example database (a
# clean clone has none anyway); no wall-clock deadline or timing health checks (tests never
# assert on time); a failing example is printed with its reproduction blob. "explore"
# (`make fuzz`): fresh random examples, ten times the budget, the database kept, for long
# searches; whatever it finds becomes an explicit @example or regression test.
_TIMING_CHECKS = [HealthCheck.too_slow]
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    max_examples=100, suppress_health_check=_TIMING_CHECKS)
settings.register_profile(
    "explore", derandomize=False, deadline=None, print_blob=True, max_examples=1000,
    suppress_health_check=_TIMING_CHECKS,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytest_plugins = ["pytester"]  # tests/test_conftest.py runs small sessions with our hooks

ROOT = Path(__file__).resolve().parent.parent
CORPUS_SRC = sorted((ROOT / "examples" / "xdp").glob("*.c"))
CORPUS_NAMES = [p.stem for p in CORPUS_SRC]
BUILD = ROOT / "build" / "xdp"


def corpus_object(name: str) -> Path:
    """The built object for examples/xdp/<name>.c, building the corpus when it is stale."""
    obj = BUILD / f"{name}.o"
    src = ROOT / "examples" / "xdp" / f"{name}.c"
    if not obj.exists() or obj.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["make", "-s", "-C", str(ROOT), "corpus"], check=True)
    return obj


@pytest.fixture(params=CORPUS_NAMES)
def corpus_obj(request) -> Path:
    """Each corpus object in turn."""
    return corpus_object(request.param)


def compile_bpf(tmp_path: Path, source: str, name: str = "prog") -> Path:
    """Compile a C snippet with the corpus flags; returns the object path."""
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    obj = tmp_path / f"{name}.o"
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                               text=True).stdout.strip() or "x86_64-linux-gnu"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-mcpu=v3",
                    f"-I/usr/include/{multiarch}", "-c", str(src), "-o", str(obj)], check=True)
    return obj


# The oracles a test may need. A test marked ``kernel`` needs bpf(2) (BPF_PROG_LOAD /
# BPF_PROG_TEST_RUN); one marked ``rtl`` needs the RTL tools it names (default: the
# simulator, i.e. iverilog + vvp + cocotb + cocotbext-axi). Where one is missing the test
# skips with the reason, unless the environment variable of its kind is 1 (``.ci/run`` sets
# both): then the test fails, and so does a skip raised inside such a test or its fixtures.
# ``require(tool)`` does the same for a fixture or a test body.
REQUIRE_ENV = {"bpf": "REQUIRE_BPF", "simulator": "REQUIRE_RTL", "iverilog": "REQUIRE_RTL",
               "yosys": "REQUIRE_RTL"}


def _missing_bpf() -> str | None:
    from ebpf.kernel.load import bpf_permitted

    ok, reason = bpf_permitted()
    return None if ok else f"bpf(2) not usable: {reason}"


def _missing_simulator() -> str | None:
    absent = [t for t in ("iverilog", "vvp") if shutil.which(t) is None]
    absent += [m for m in ("cocotb", "cocotbext.axi") if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(absent)} (make setup installs them)" if absent else None


def _missing_tool(name: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(name) else f"needs {name} (make setup installs it)"


PROBES: dict[str, Callable[[], str | None]] = {
    "bpf": _missing_bpf, "simulator": _missing_simulator, "iverilog": _missing_tool("iverilog"),
    "yosys": _missing_tool("yosys")}


@functools.cache
def missing(tool: str) -> str | None:
    """Why ``tool`` is not usable here, or None when it is."""
    return PROBES[tool]()


def required(tool: str) -> bool:
    """Whether the environment demands ``tool`` (REQUIRE_BPF=1 / REQUIRE_RTL=1)."""
    return os.environ.get(REQUIRE_ENV[tool], "") == "1"


def require(tool: str) -> None:
    """Skip the running test when ``tool`` is missing, or fail it when it is required."""
    reason = missing(tool)
    if reason is None:
        return
    if required(tool):
        pytest.fail(f"{REQUIRE_ENV[tool]}=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def _tools(item: pytest.Item) -> list[str]:
    """The oracles the test's markers ask for."""
    tools = ["bpf"] if item.get_closest_marker("kernel") else []
    for mark in item.iter_markers("rtl"):
        tools += list(mark.args) or ["simulator"]
    return tools


def pytest_runtest_setup(item: pytest.Item) -> None:
    for tool in _tools(item):
        require(tool)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A skip inside a test that needs a required oracle (a fixture's or the body's) fails."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    demanded = [REQUIRE_ENV[t] for t in _tools(item) if required(t)]
    if demanded:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"{demanded[0]}=1 and the test skipped: {reason}"
