"""ebpf.kernel.load against the running kernel: the XDP corpus loads, broken code is refused.

Every test that needs bpf(2) skips with bpf_permitted()'s reason when it is not permitted.
Corpus objects come from `make corpus`; one that is missing or older than its sources is
built here with the same clang command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ebpf.kernel.load import LoadResult, bpf_permitted, load_object

ROOT = Path(__file__).resolve().parents[3]
CORPUS_SRC = ROOT / "examples" / "xdp"
CORPUS_OBJ = ROOT / "build" / "xdp"
CORPUS = sorted(p.stem for p in CORPUS_SRC.glob("*.c"))

needs_bpf = pytest.mark.kernel  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)

# BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG (include/uapi/linux/bpf.h)
NO_PREALLOC = 1 << 0
RDONLY_PROG = 1 << 7

BROKEN_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Reads the first packet byte without comparing against data_end. */
SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	return *(unsigned char *)(long)ctx->data;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _multiarch() -> str:
    try:
        out = subprocess.run(
            ["gcc", "-print-multiarch"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        out = ""
    return out or "x86_64-linux-gnu"


def _clang(src: Path, obj: Path) -> None:
    """The Makefile's corpus rule; writes through a temporary so parallel workers never see
    half an object."""
    clang = os.environ.get("CLANG", "clang")
    if shutil.which(clang) is None:
        pytest.fail(f"{clang} not found: run `make corpus` or install clang")
    obj.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".o", dir=obj.parent)
    os.close(fd)
    cmd = [
        clang, "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
        f"-I/usr/include/{_multiarch()}", f"-I{CORPUS_SRC}", "-c", str(src), "-o", tmp,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.fail(f"clang failed on {src.name}:\n{proc.stderr}")
        os.replace(tmp, obj)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def corpus_object(name: str) -> Path:
    """build/xdp/<name>.o, rebuilt when missing or older than its source or a header."""
    src = CORPUS_SRC / f"{name}.c"
    obj = CORPUS_OBJ / f"{name}.o"
    deps = [src, *CORPUS_SRC.glob("*.h")]
    if not obj.exists() or obj.stat().st_mtime < max(d.stat().st_mtime for d in deps):
        _clang(src, obj)
    return obj


def maps_by_name(result: LoadResult) -> dict[str, dict]:
    return {m["name"]: m for m in result.maps}


def types_of(result: LoadResult) -> list[str]:
    return sorted(str(m["type"]) for m in result.maps)


def test_bpf_permitted_gives_one_line_reason():
    """bpf_permitted() returns a bool and a non-empty one-line reason."""
    ok, reason = bpf_permitted()
    assert isinstance(ok, bool)
    assert reason and "\n" not in reason


def test_corpus_is_present():
    """The corpus has the programs the rest of the project relies on."""
    for name in ("xdp_pass", "firewall", "katran_lb", "tail_call", "bpf2bpf_loop", "globals"):
        assert name in CORPUS


@needs_bpf
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_object_loads(name):
    """Every corpus object passes the kernel verifier with all its programs and maps."""
    result = load_object(corpus_object(name))
    assert result.ok, result.log
    assert result.programs
    for prog in result.programs:
        assert prog.section.startswith("xdp")
        assert prog.insn_cnt > 0


@needs_bpf
def test_broken_program_is_rejected_with_log(tmp_path):
    """An unchecked packet read is refused: ok=False with the verifier's reason in the log."""
    src = tmp_path / "broken.c"
    src.write_text(BROKEN_SOURCE)
    obj = tmp_path / "broken.o"
    _clang(src, obj)
    result = load_object(obj)
    assert not result.ok
    assert "invalid access to packet" in result.log
    assert [p.name for p in result.programs] == ["xdp_unchecked"]


@needs_bpf
def test_missing_object_is_not_ok(tmp_path):
    """A path that does not exist gives ok=False and a log naming it, not an exception."""
    missing = tmp_path / "nope.o"
    result = load_object(missing)
    assert not result.ok
    assert str(missing) in result.log
    assert result.programs == [] and result.maps == []


@needs_bpf
def test_stats_log_level_reports_processed_insns():
    """log_level=4 returns the verifier's statistics for a program that loads."""
    result = load_object(corpus_object("parser_counters"), log_level=4)
    assert result.ok, result.log
    assert "processed" in result.log and "insns" in result.log


@needs_bpf
def test_firewall_maps():
    """firewall: 5-tuple hash, LPM trie without prealloc, per-CPU verdict counters."""
    maps = maps_by_name(load_object(corpus_object("firewall")))
    assert maps["flow_rules"]["type"] == "hash"
    assert maps["flow_rules"]["key_size"] == 16
    assert maps["blocked_src"]["type"] == "lpm_trie"
    assert maps["blocked_src"]["map_flags"] & NO_PREALLOC
    assert maps["verdict_stats"]["type"] == "percpu_array"


@needs_bpf
def test_katran_maps():
    """katran_lb: VIP hash, ring and reals arrays, LRU connection table."""
    result = load_object(corpus_object("katran_lb"))
    assert types_of(result) == ["array", "array", "hash", "lru_hash"]
    maps = maps_by_name(result)
    assert maps["ch_rings"]["max_entries"] % maps["vip_map"]["max_entries"] == 0


@needs_bpf
def test_tail_call_prog_array_and_three_programs():
    """tail_call: a PROG_ARRAY and three programs in SEC("xdp"), one object."""
    result = load_object(corpus_object("tail_call"))
    assert result.ok, result.log
    assert maps_by_name(result)["jmp_table"]["type"] == "prog_array"
    assert sorted(p.name for p in result.programs) == ["xdp_dispatch", "xdp_tcp", "xdp_udp"]
    assert {p.section for p in result.programs} == {"xdp"}


@needs_bpf
def test_router_maps():
    """lpm_router: LPM route table and a DEVMAP; fib_router needs no map at all."""
    assert types_of(load_object(corpus_object("lpm_router"))) == ["devmap", "lpm_trie"]
    assert load_object(corpus_object("fib_router")).maps == []


@needs_bpf
def test_global_data_sections_become_maps():
    """globals: .rodata (frozen, read-only for the program), .data and .bss arrays."""
    maps = load_object(corpus_object("globals")).maps
    by_suffix = {str(m["name"]).rsplit(".", 1)[-1]: m for m in maps}
    assert set(by_suffix) == {"rodata", "data", "bss"}
    assert all(m["type"] == "array" and m["max_entries"] == 1 for m in maps)
    assert by_suffix["rodata"]["map_flags"] & RDONLY_PROG
    assert not by_suffix["bss"]["map_flags"] & RDONLY_PROG


@needs_bpf
def test_syn_flood_threshold_in_rodata():
    """syn_flood: LRU per-source counters and its threshold in a .rodata map."""
    result = load_object(corpus_object("syn_flood"))
    assert "lru_hash" in types_of(result)
    assert any(str(m["name"]).endswith(".rodata") for m in result.maps)


@needs_bpf
def test_xdp_pass_has_frags_program():
    """xdp_pass: one program in SEC("xdp") and one in SEC("xdp.frags")."""
    result = load_object(corpus_object("xdp_pass"))
    assert sorted(p.section for p in result.programs) == ["xdp", "xdp.frags"]
