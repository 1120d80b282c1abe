"""Shared fixtures: the built XDP corpus (make corpus) and small ELF-patching helpers."""

from __future__ import annotations

import os
import subprocess
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
