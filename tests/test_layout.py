"""The tests' own layout: they mirror the code (a module's tests are found by its path), and
what they share lives in tests/support/ or beside the code (core/*/testing.py), never in
another test module."""

from pathlib import Path

import core
from tests.support.imports import imported_by

TESTS = Path(__file__).parent
CORE = Path(core.__file__).parent


def imports_of_test_modules(path: Path) -> list[str]:
    return sorted(m for m in imported_by(path) if m.split(".")[-1].startswith("test_"))


def test_layout__no_test_module_imports_another(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from .test_runtime import Collector\nfrom tests.core import test_x\n"
                     "from tests.support.procs import Cluster\n")
    assert imports_of_test_modules(probe) == [".test_runtime", "tests.core.test_x"]
    files = list(TESTS.rglob("*.py"))
    assert len(files) > 50  # the check ran
    assert {str(p.relative_to(TESTS)): imports_of_test_modules(p) for p in files
            if imports_of_test_modules(p)} == {}


def test_layout__the_chat_tests_are_in_folders_named_for_the_chat_layers():
    chat_tests = TESTS / "core" / "chat"
    folders = {p.name for p in chat_tests.iterdir() if p.is_dir() and p.name != "__pycache__"}
    layers = {p.name for p in (CORE / "chat").iterdir()
              if p.is_dir() and (p / "__init__.py").exists()}
    assert folders and folders <= layers
    for folder in folders:
        assert (chat_tests / folder / "__init__.py").exists(), folder
