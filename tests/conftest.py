"""Shared fixtures: the built XDP corpus (make corpus) and small ELF-patching helpers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
