"""offload.kernel_check against the running kernel: the verifier's rejecting line, or its yes."""

from __future__ import annotations

import pytest

from ebpf.kernel.load import load_object
from offload.kernel_check import kernel_verdict, rejection
from tests.conftest import compile_bpf, corpus_object

pytestmark = pytest.mark.kernel

UNCHECKED_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	if (data[12] == 0x08)
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int xdp_fine(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_rejected_program_names_the_verifier_line(tmp_path):
    """A packet read without a bounds check: the kernel refuses it, and the verdict names the
    instruction, the C line and the verifier's message."""
    obj = compile_bpf(tmp_path, UNCHECKED_SOURCE, "unchecked")
    assert not load_object(obj).ok  # the oracle: the kernel refuses the object
    kv = kernel_verdict(obj, "xdp_unchecked")
    assert kv.loaded is False and kv.verifier
    line = next(i for i, t in enumerate(UNCHECKED_SOURCE.splitlines(), 1) if "data[12]" in t)
    assert kv.insn == 1 and kv.file == "unchecked.c" and kv.line == line
    assert "invalid access to packet" in kv.message


def test_a_rejected_neighbour_does_not_count(tmp_path):
    """The good program of an object whose other program the verifier refuses loads."""
    obj = compile_bpf(tmp_path, UNCHECKED_SOURCE, "unchecked")
    kv = kernel_verdict(obj, "xdp_fine")
    assert kv.loaded is True


def test_prog_array_neighbours_load_together():
    """tail_call.o's prog_array names its neighbours: the program loads with them."""
    obj = corpus_object("tail_call")
    assert load_object(obj).ok
    assert kernel_verdict(obj, "xdp_tcp").loaded is True


def test_loader_sized_map_is_not_sent_to_the_kernel():
    """A map sized by its loader: the kernel is not asked, and the verdict says why."""
    kv = kernel_verdict(corpus_object("xdp_pass"), "xdp_pass_func", ["counts"])
    assert kv.loaded is None and "map 'counts' is sized by its loader" in kv.why


def test_rejection_before_the_verifier_quotes_libbpf():
    """A log without a verifier section: libbpf's last cause line is the message, and it is
    not a verifier rejection."""
    log = ("libbpf: map 'm': failed to create: Invalid argument(-22)\n"
           "libbpf: failed to load object 'x.o'\n")
    kv = rejection(log, "p", 22)
    assert kv.loaded is False and kv.insn is None and "failed to create" in kv.message
    assert not kv.verifier  # not the code's fault: check keeps its verdict
