"""The kernel bridge: the running kernel as the oracle. ``load`` (libbpf over ctypes; opens
objects with every pin path cleared), ``bridge`` (``KernelObject``: load, run with
BPF_PROG_TEST_RUN, read and write maps), ``results`` (``RunResult``, ``XdpMd``, the bridge's
errors), ``raw`` (programs loaded from raw instructions), ``batch`` (batched map reads) and
``netns`` (a private network namespace for devices test runs need). Nothing is attached and
nothing pinned."""
