"""Layers point down only (docs/architecture.md): ``ebpf`` <- ``hw`` <- ``sim``;
``rtl_models`` on ``ebpf`` + ``hw``; ``offload`` on top. Every import of every module is
read with ``ast``: top level, inside functions, under TYPE_CHECKING, and the constant
module names given to ``importlib.import_module`` / ``__import__``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# What each package may import from the project (itself included).
ALLOWED = {
    "ebpf": {"ebpf"},
    "hw": {"ebpf", "hw"},
    "sim": {"ebpf", "hw", "sim"},
    "rtl_models": {"ebpf", "hw", "rtl_models"},
    "offload": {"ebpf", "hw", "sim", "rtl_models", "offload"},
}
PROJECT = set(ALLOWED) | {"tests", "bench", "examples", "scripts"}


def imported_modules(source: str, filename: str = "<src>") -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, wherever it stands."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def upward_imports(package: str, source: str, filename: str = "<src>") -> list[str]:
    """The imports of a module of ``package`` that reach a project package it may not use."""
    return [f"{filename}:{line}: {package} imports {name}"
            for line, name in imported_modules(source, filename)
            if name.split(".")[0] in PROJECT - ALLOWED[package]]


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_point_down(package):
    """No module of the package (testbenches included) imports a package above it."""
    modules = _modules(package)
    assert modules, f"no modules under {package}/"
    bad = [hit for p in modules
           for hit in upward_imports(package, p.read_text(encoding="utf-8"),
                                     str(p.relative_to(ROOT)))]
    assert bad == []


def test_checker_sees_every_kind_of_import():
    """Function-level, TYPE_CHECKING, relative-free ``from`` and importlib imports are all
    seen; allowed ones are not reported."""
    source = '''
from typing import TYPE_CHECKING
import ebpf.code.isa
from hw.targets import get_target
if TYPE_CHECKING:
    from offload.mapper import MappingReport
def f():
    import sim.packets
    from . import sibling
    return importlib.import_module("offload.report")
def g():
    return __import__("tests.conftest")
'''
    assert upward_imports("hw", source) == [
        "<src>:6: hw imports offload.mapper", "<src>:8: hw imports sim.packets",
        "<src>:10: hw imports offload.report", "<src>:12: hw imports tests.conftest"]
    assert upward_imports("offload", source) == ["<src>:12: offload imports tests.conftest"]
    assert upward_imports("rtl_models", "import hw.pipeline\nimport ebpf\n") == []
    assert upward_imports("rtl_models", "import sim.packets\n") == [
        "<src>:1: rtl_models imports sim.packets"]


MAX_MODULE_LINES = 800  # issue 15: small modules with one job each


def test_no_product_module_over_the_limit():
    """Every module of the product packages stays within MAX_MODULE_LINES lines."""
    long = {str(path.relative_to(ROOT)): n
            for package in sorted(ALLOWED)
            for path in _modules(package)
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
