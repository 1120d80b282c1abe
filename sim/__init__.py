"""Packet-rate simulation of the data path: traffic and pcap replay, link, NIC, PCIe and host
cores as queues (``sim.model``), two engines that agree to the picosecond (``engine_simpy``
the simpy reference, ``engine_fast`` the vectorised one), metrics, and the scenario runner
(``sim.scenario``: ``Scenario``, ``prepare``, ``simulate``, ``run``).

Stands on ``ebpf`` (every packet runs the program in the VM) and ``hw`` (costs, framing);
never on ``offload``: a mapped pipeline cost comes in through the ``nic_cost_for`` hook. The
command lines (``offload sim``, ``make sim``) live in ``offload.sim_cmd`` and
``offload.default_set`` (docs/architecture.md).
"""
