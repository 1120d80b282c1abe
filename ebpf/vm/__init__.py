"""The reference eBPF interpreter, the oracle every other executor is tested against.

``machine`` (``Vm``: runs a linked program against its maps), ``builders`` (one closure per
instruction, chosen by the ISA's ``Kind``), ``alu`` (ALU, jump, endian and atomic operations
as tables), ``limits`` (the kernel's limits and pseudo-address bases), ``memory`` (regions
and checked loads and stores), ``xdp`` (the XDP buffer and ``run_xdp``) and ``trace`` (what
a run records). Import the modules directly (``from ebpf.vm.machine import Vm``): this
package imports nothing, so the helpers can use ``limits`` without a cycle."""
