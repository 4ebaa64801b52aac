"""Reading a module's imports without running it, for the tests that check who imports
what (tests/test_layout.py, tests/core/chord/test_imports.py)."""

import ast
from pathlib import Path


def imported_by(path: Path) -> set[str]:
    """The modules ``path`` names in its imports, wherever they stand, relative ones with
    their dots; each name of a ``from`` import also as ``module.name`` (it may be a module):
    ``from .x import y`` gives ``.x`` and ``.x.y``, ``from . import y`` gives ``.`` and ``.y``."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            imported.add(module)
            imported |= {f"{module}.{alias.name}" if node.module else f"{module}{alias.name}"
                         for alias in node.names}
    return imported
