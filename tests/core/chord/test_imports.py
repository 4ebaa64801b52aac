"""What the Chord layer may import: never the chat above it; routing not even asyncio."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import core.chord

CHORD = Path(core.chord.__file__).parent


def modules_loaded_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return set(out.stdout.split())


class TestImports:
    @pytest.mark.parametrize("module", ["core.chord", "core.chord.sim"])
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
