"""Nothing is ever pinned and no pinned map of a running program is reused (issue 14 item 1).

libbpf honours ``__uint(pinning, LIBBPF_PIN_BY_NAME)``: with a bpffs at /sys/fs/bpf it would
reuse a map pinned there under the same name (and the state file would overwrite it) and pin
the maps it creates. Each test runs in a private mount namespace (``unshare --mount``) where a
fresh bpffs is mounted in a temporary directory and bind-mounted over /sys/fs/bpf, so libbpf's
default pin root is that directory and the host's mounts are untouched. A map of the name the
object pins is created and pinned there first, holding a sentinel; after every load path ran,
the directory must hold exactly what it held before and the sentinel must be intact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, compile_bpf

needs_bpf = pytest.mark.kernel  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)

PINNED_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Two maps pinned by name: one a running program already pinned, one nobody pinned yet. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} seen SEC(".maps");

SEC("xdp")
int xdp_pinned_count(struct xdp_md *ctx)
{
	__u32 key = 0, one = 1;
	__u64 *count = bpf_map_lookup_elem(&counters, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	bpf_map_update_elem(&seen, &key, &one, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""

SENTINEL = 0xDEADBEEF

# Runs inside the private mount namespace: argv = bpffs dir, object, state file.
INSIDE = r"""
import ctypes, json, os, subprocess, sys
from ebpf.kernel.bridge import KernelObject
from ebpf.kernel.load import libbpf, load_object

bpffs, obj, state_path = sys.argv[1:4]
subprocess.run(["mount", "-t", "bpf", "bpf", bpffs], check=True)
subprocess.run(["mount", "--bind", bpffs, "/sys/fs/bpf"], check=True)
lib = libbpf()
c = ctypes
lib.bpf_map_create.restype = c.c_int
lib.bpf_map_create.argtypes = [c.c_int, c.c_char_p, c.c_uint32, c.c_uint32, c.c_uint32,
                               c.c_void_p]
lib.bpf_obj_pin.argtypes = [c.c_int, c.c_char_p]
lib.bpf_obj_get.argtypes = [c.c_char_p]

def read_u64(fd, key):
    k, v = c.c_uint32(key), c.c_uint64(0)
    assert lib.bpf_map_lookup_elem(fd, c.byref(k), c.byref(v)) == 0
    return v.value

# A running program's pinned map: same name and definition as the object's `counters`.
fd = lib.bpf_map_create(2, b"counters", 4, 8, 4, None)  # BPF_MAP_TYPE_ARRAY
assert fd >= 0, fd
k, v = c.c_uint32(0), c.c_uint64(%(sentinel)d)
assert lib.bpf_map_update_elem(fd, c.byref(k), c.byref(v), 0) == 0
assert lib.bpf_obj_pin(fd, b"/sys/fs/bpf/counters") == 0
os.close(fd)
before = sorted(os.listdir(bpffs))

out = {"before": before}
loaded = load_object(obj)
out["load_object_ok"] = loaded.ok
with KernelObject(obj, state=json.load(open(state_path))) as ko:
    out["state_value"] = int.from_bytes(ko.lookup("counters", b"\0\0\0\0"), "little")
    out["run_retval"] = ko.test_run(bytes(64)).retval
    out["after_run_value"] = int.from_bytes(ko.lookup("counters", b"\0\0\0\0"), "little")
cli = subprocess.run([sys.executable, "-m", "offload", "kernel", obj, "--random", "3",
                      "--maps", state_path], capture_output=True, text=True)
out["cli_status"] = cli.returncode
out["cli_stderr"] = cli.stderr
out["after"] = sorted(os.listdir(bpffs))
pinned = lib.bpf_obj_get(b"/sys/fs/bpf/counters")
out["sentinel"] = read_u64(pinned, 0)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def pinned_obj(tmp_path_factory) -> Path:
    return compile_bpf(tmp_path_factory.mktemp("pin"), PINNED_SOURCE, name="pinned")


def _run_in_private_namespace(tmp_path: Path, obj: Path) -> dict:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing: the pinning test needs a mount namespace")
    bpffs = tmp_path / "bpffs"
    bpffs.mkdir()
    state = tmp_path / "state.json"
    state.write_text(json.dumps(
        {"maps": {"counters": [{"key": "00000000", "value": "0100000000000000"}]}}))
    script = tmp_path / "inside.py"
    script.write_text(INSIDE % {"sentinel": SENTINEL})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, str(script),
         str(bpffs), str(obj), str(state)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_bpf
def test_no_pin_created_and_pinned_map_untouched(tmp_path, pinned_obj):
    """Loading a LIBBPF_PIN_BY_NAME object pins nothing and never writes a pinned map."""
    out = _run_in_private_namespace(tmp_path, pinned_obj)
    assert "counters" in out["before"]
    assert out["after"] == out["before"], "a load path left a pin behind"
    assert out["sentinel"] == SENTINEL, "the running program's pinned map was overwritten"
    assert out["load_object_ok"] is True
    assert out["state_value"] == 1, "the state went to a fresh map of the object"
    assert out["run_retval"] == 2 and out["after_run_value"] == 2, "the program ran on it"
    assert out["cli_status"] == 0, out["cli_stderr"]


REFUSED_MAP_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The kernel refuses a hash map with a zero-byte key when libbpf creates it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__uint(key_size, 0);
	__uint(value_size, 4);
} keyless SEC(".maps");

SEC("xdp")
int xdp_keyless(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


@needs_bpf
def test_load_failure_names_libbpf_cause(tmp_path):
    """A failed load reports libbpf's cause, not its closing 'failed to load object'."""
    from ebpf.kernel.bridge import KernelObject
    from ebpf.kernel.results import KernelLoadError

    obj = compile_bpf(tmp_path, REFUSED_MAP_SOURCE, name="keyless")
    with pytest.raises(KernelLoadError, match=r"keyless.o: load failed: map 'keyless'") as exc:
        KernelObject(obj)
    assert "failed to load object" not in str(exc.value)
    assert "failed to load object" in exc.value.log, "the whole libbpf log is kept"


@needs_bpf
def test_cli_load_failure_one_line_and_debug_log(tmp_path):
    """offload kernel: libbpf's cause in one line, exit 2; --debug adds libbpf's whole log."""
    obj = compile_bpf(tmp_path, REFUSED_MAP_SOURCE, name="keyless")
    cmd = [sys.executable, "-m", "offload", "kernel", str(obj), "--random", "2"]
    plain = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [
        f"offload: error: {obj}: load failed: map 'keyless': failed to create: "
        "Invalid argument(-22)"]
    debug = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True,
                           cwd=ROOT)
    assert "libbpf: failed to load object" in debug.stderr
