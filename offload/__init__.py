"""The top layer: the offload compiler and the application (docs/architecture.md).

The compiler, on the shared analysis (``ebpf.analysis``): feasibility per target
(``offload.feasibility``), lowering onto the pipeline (``offload.lower``), scheduling with
CP-SAT (``offload.schedule``), partition NIC / host, the mapper that drives them
(``offload.mapper.map_program``) and the equivalence check against the VM. The application:
the ``offload`` command line (``offload.cli``), the reports (``offload.report``), and the
orchestration of the lower packages: the RTL co-simulation (``offload.cosim``,
``offload.regression``) and the packet-rate simulation with mapped costs
(``offload.sim_cmd``, ``offload.default_set``, ``offload.sim_cost``). May import every
other package; none imports it.
"""
