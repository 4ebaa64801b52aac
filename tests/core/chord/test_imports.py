"""What the Chord layer may import: never the chat above it; routing not even asyncio; no
module of it imports itself back through another; and the product never imports the test
doubles (``core.chord.testing``, ``core.chat.testing``)."""

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import core
import core.chord
from tests.support.imports import imported_by

CHORD = Path(core.chord.__file__).parent
PRODUCT = [Path(core.__file__).parent, Path(core.__file__).parent.parent / "tui"]


def imports_a_testing_module(path: Path) -> list[str]:
    return sorted(m for m in imported_by(path) if m.split(".")[-1] == "testing")


def modules_loaded_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return set(out.stdout.split())


def chord_imports(name: str) -> set[str]:
    """The modules of core.chord that module ``name`` imports (``__init__`` for the package),
    wherever in the module the import stands (one inside a function counts too)."""
    modules = {path.stem for path in CHORD.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse((CHORD / f"{name}.py").read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1 or (node.level == 0 and not (node.module or "").startswith(
                    "core.chord")):
                continue
            base = (node.module or "").removeprefix("core.chord").lstrip(".")
            targets = [f"core.chord.{base}" if base else "core.chord"]
            if not base:   # from . import wire: the module wire, if it is one
                targets = [f"core.chord.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "core.chord" or target.startswith("core.chord."):
                module = target.removeprefix("core.chord").lstrip(".").split(".")[0]
                found.add(module if module in modules else "__init__")
    return found - {name}


class TestImports:
    @pytest.mark.parametrize("module", ["core.chord", "core.chord.sim", "core.chord.testing"])
    def test_import__of_the_chord_layer_never_loads_the_chat(self, module):
        loaded = modules_loaded_by(module)
        assert module in loaded  # the check ran
        assert not {m for m in loaded if m == "core.chat" or m.startswith("core.chat.")}
        assert "urwid" not in loaded and "tui" not in loaded

    def test_imports__of_routing_and_what_it_builds_on_do_no_io(self):
        # The package's __init__ loads everything, so read the modules' own imports.
        pure = ["routing", "ids", "address", "errors", "peers"]
        for name in pure:
            tree = ast.parse((CHORD / f"{name}.py").read_text())
            imported = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    imported.add("." * node.level + (node.module or ""))
            assert imported, name
            allowed = {"__future__", "collections.abc", "dataclasses", "functools", "hashlib",
                       "ipaddress", "re", "random"} | {f".{m}" for m in pure}
            assert imported <= allowed, (name, imported - allowed)

    def test_imports__the_product_never_imports_the_test_doubles(self):
        product = [p for root in PRODUCT for p in root.rglob("*.py") if p.name != "testing.py"]
        assert len(product) > 50  # the check ran
        assert {str(p): imports_a_testing_module(p) for p in product
                if imports_a_testing_module(p)} == {}

    def test_imports__the_check_catches_an_import_of_a_testing_module(self, tmp_path):
        probe = tmp_path / "probe.py"
        for line in ["from core.chord.testing import FAST", "import core.chat.testing",
                     "from ..chord import testing", "from .testing import now",
                     "from . import testing"]:
            probe.write_text(line + "\n")
            assert imports_a_testing_module(probe), line
        probe.write_text("from core.chord.sim import run\nimport asyncio\n")
        assert imports_a_testing_module(probe) == []

    def test_imports__no_module_of_the_chord_layer_is_part_of_an_import_cycle(self):
        graph = {path.stem: chord_imports(path.stem) for path in CHORD.glob("*.py")}
        assert "transport" in graph["tcp"] and "transport" in graph["sim"]  # the graph is read
        assert "tcp" not in graph["transport"]
        try:
            order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as e:
            pytest.fail(f"an import cycle: {' -> '.join(e.args[1])}")
        assert set(order) == set(graph)
