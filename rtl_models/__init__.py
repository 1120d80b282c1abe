"""The pipe target in Verilog (``rtl/``), its cocotb testbenches (``tb/<dut>/``, shared code
in ``tbkit``), the Icarus runner, lint and yosys statistics (``runner``), and the system run
of pipe_top on a configuration's images and a packet trace (``system.run_system``).

Stands on ``ebpf`` and ``hw`` only (``hw.pipeline`` is the testbenches' oracle); mapping a
program and comparing with the VM is ``offload.cosim`` (rtl_models/README.md).
"""
