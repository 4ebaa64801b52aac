"""The chat's layers import one way: service → users → ring → wire → model, and all of
them → core.chord. A module that imports against the arrows fails here. The test doubles
(testing.py) sit on top, beside the service."""

import ast
from pathlib import Path

import pytest

import core.chat

CHAT = Path(core.chat.__file__).parent
LAYERS = ["model", "wire", "ring", "users"]  # lowest first; the service (and testing) above
TOP = {"service.py", "testing.py"}
RANK = {name: i for i, name in enumerate(LAYERS)} | {"service": len(LAYERS)}
NEVER = ("tui", "urwid", "core.irc", "core.runtime", "core.headless")
MODEL_MAY = ("core.chord.ids", "core.datadir")
MODEL_NEVER = {"asyncio", "socket", "sqlite3", "threading", "subprocess"}


def chat_modules() -> list[Path]:
    return sorted(p for p in CHAT.rglob("*.py") if p.name != "__init__.py" or p.parent != CHAT)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["core", "chat"] or len(parts) < 3:
        return None
    return parts[2] if parts[2] in RANK else "service"


def module_name(path: Path) -> str:
    rel = path.relative_to(CHAT.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    package = name.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                names = [f"{module}.{a.name}" for a in node.names] if not node.module else []
                found |= {module, *names} if names else {module}
            else:
                found.add(node.module)
    return found


def against_the_arrows(path: Path, name: str | None = None) -> list[str]:
    name = name or module_name(path)
    own = layer_of(name)
    wrong = []
    for imported in imports_of(path, name):
        if imported.startswith(NEVER) or imported.split(".")[0] in NEVER:
            wrong.append(imported)
            continue
        outside = imported.startswith("core.") and not imported.startswith(
            ("core.chat.", *MODEL_MAY))
        if own == "model" and (imported.split(".")[0] in MODEL_NEVER or outside):
            wrong.append(imported)
        target = layer_of(imported)
        if target is not None and RANK[target] > RANK[own]:
            wrong.append(imported)
    return sorted(wrong)


def test_layers__every_module_lives_in_a_layer():
    loose = [p.name for p in CHAT.glob("*.py") if p.name not in {"__init__.py", *TOP}]
    assert loose == []
    assert {p.parent.name for p in chat_modules()} == set(LAYERS) | {"chat"}


@pytest.mark.parametrize("path", chat_modules(), ids=lambda p: str(p.relative_to(CHAT)))
def test_layers__imports_follow_the_arrows(path):
    assert against_the_arrows(path) == []


def test_layers__the_check_catches_an_import_against_the_arrows(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("from ..ring.names import Names\nfrom core.chat.users import user\n"
                   "import asyncio\nfrom core.events import Event\nfrom .ids import new_id\n")
    assert against_the_arrows(bad, "core.chat.model.probe") == [
        "asyncio", "core.chat.ring.names", "core.chat.users", "core.events"]
    assert against_the_arrows(bad, "core.chat.users.probe") == []
