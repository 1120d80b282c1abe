"""BPF helper functions for the reference VM, one small handler each, in one table keyed by
helper id (``ebpf.helpers.core``: ``HelperEnv``, ``HelperState``, ``get_helper``). Each
module registers its handlers when imported; importing the package registers them all:
``maps``, ``runtime`` (time, randomness, tail_call, loop), ``packet`` (XDP adjustments,
redirects, checksums), ``output`` (printk, perf events, ring buffers) and ``fib``."""

from ebpf.helpers import core, fib, maps, output, packet, runtime  # noqa: F401  (registration)
