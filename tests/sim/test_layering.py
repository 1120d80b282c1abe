"""The simulator core does not depend on ``offload`` (docs: ARCHITECTURE.md, "Packages and
who depends on whom"): only its command-line layers may import it, and a pipeline target's
mapping reaches the core through the ``nic_cost_for`` hook."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.conftest import ROOT, corpus_object

SIM = ROOT / "sim"
COMMAND_LINE = {"sim_cmd.py", "default_set.py"}  # command-line layers: may import offload
CORE = sorted(p for p in SIM.glob("*.py") if p.name not in COMMAND_LINE)


def _offload_imports(path) -> list[str]:
    """``offload`` imports anywhere in the module (top level, functions, TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        found += [f"{path.name}:{node.lineno}: {n}" for n in names
                  if n == "offload" or n.startswith("offload.")]
    return found


def test_sim_core_has_no_offload_imports():
    assert len(CORE) > 5
    assert [hit for p in CORE for hit in _offload_imports(p)] == []


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
