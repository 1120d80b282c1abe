"""The simulator does not depend on ``offload`` at run time (the static check of every
package's imports is tests/test_layers.py): a pipeline target's mapping reaches it through
the ``nic_cost_for`` hook, and the command-line layers live in ``offload``."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, corpus_object

SIM = ROOT / "sim"
CORE = sorted(SIM.glob("*.py"))


def test_pipeline_prepare_without_hook_imports_no_offload():
    """Every core module imported and a pipeline target prepared without a mapping hook (the
    path that used to run the mapper): no ``offload`` module is loaded, and the NIC cost
    says that no mapping was supplied."""
    modules = ", ".join(f"sim.{p.stem}" for p in CORE if p.stem != "__init__")
    code = f"""
import json, sys
import sim, {modules}
from sim.scenario import Scenario, prepare, simulate
prep = prepare(Scenario(program=sys.argv[1], target="pipe", traffic="64B@10G", packets=200,
                        host_cost="model"))
report = simulate(prep, progress_enabled=False)
print(json.dumps({{"offload": sorted(m for m in sys.modules
                                     if m == "offload" or m.startswith("offload.")),
                  "source": report["nic_cost"]["source"]}}))
"""
    out = subprocess.run([sys.executable, "-c", code, str(corpus_object("xdp_tx"))],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout.splitlines()[-1])
    assert doc["offload"] == []
    assert doc["source"].startswith("no mapping supplied for pipe (no nic_cost_for hook); "
                                    "simulator defaults")
