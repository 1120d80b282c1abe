"""BPF maps with the Linux kernel's semantics (kernel 6.x), for the reference VM.

Each class models one ``enum bpf_map_type`` the way ``kernel/bpf/*.c`` implements it: the
same return codes (0 or a negative Linux errno, exactly what ``bpf_map_update_elem`` and
``bpf_map_delete_elem`` return to a program), checked in the same order.

Storage contract for the VM: ``lookup`` returns a ``bytearray`` that stays the same object
for as long as the entry exists, so the VM can hand the program a pointer into it and
writes through the pointer land in the map. Updates of an existing entry copy into that
bytearray (the kernel replaces hash elements with a fresh allocation; a program still
holding the old pointer would race with the free there, so in-place is the defined
behaviour we pick). Per-CPU maps keep one bytearray per CPU; ``cpu`` selects it.

Program versus user space: ``update(..., cpu=c)`` is the helper called by a program on CPU
``c``; ``update(..., cpu=None)`` is ``bpf(BPF_MAP_UPDATE_ELEM)`` from user space. They only
differ for per-CPU maps: a program writes its own CPU's copy (a new entry starts zeroed on
the other CPUs), user space writes every CPU (``update_percpu`` takes one value per CPU).

No map value here carries a ``bpf_spin_lock`` (we do not read BTF records), so
``BPF_F_LOCK`` always fails with -EINVAL where the kernel checks for the lock.

Modules: ``base`` (BpfMap, flags, errnos), ``array``, ``hash``, ``lpm``, ``fd`` (fd arrays and
map-in-map), ``redirect`` (devmap, cpumap, xskmap), ``ringbuf``, ``factory`` (``create_map`` /
``create_maps``) and ``state`` (the JSON state format, ``load_state`` / ``dump_state``).
"""
