"""tests/unit mirrors src/kedro_stream: every module has a unit test in its room's folder, or is
named in :data:`WITHOUT_UNIT_TEST` with the reason.

A test covers a module when it imports it, or imports a name that a package re-exports from it
(``from kedro_stream.config import StreamConfig`` covers ``config.models``). The test must sit
in ``tests/unit/<room>/`` for a subpackage's modules, in ``tests/unit/`` for a top-level module:
a reader looking for a module's tests finds them where the module is.
"""

from __future__ import annotations

import ast
from pathlib import Path

UNIT = Path(__file__).resolve().parent
SRC = UNIT.parents[1] / "src"
PACKAGE = "kedro_stream"

#: Modules no unit test imports, and why. Each must still exist and still lack a unit test.
WITHOUT_UNIT_TEST = {
    "kedro_stream.devbroker.__main__": "`python -m kedro_stream.devbroker`; tests/e2e runs it",
    "kedro_stream.devbroker.process": (
        "the development broker's process: tests/integration/test_embedded_broker.py drives it "
        "over TCP, as every integration test does"
    ),
    "kedro_stream.testing.pytest_plugin": (
        "the broker fixture as a pytest plugin: every integration test runs through it"
    ),
    "kedro_stream.state": "a docstring only: the room's map",
    "kedro_stream.ops": "a docstring only",
    "kedro_stream.devbroker": "a docstring only",
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def reexports(package: str) -> dict[str, str]:
    """Name → module of the package, for what ``package``'s ``__init__`` imports from its own
    modules (under ``TYPE_CHECKING`` too: the root package hands its API out lazily)."""
    path = MODULES[package]
    if path.name != "__init__.py":
        return {}
    names = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module in MODULES:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
    return names


def covered(module: str, name: str | None, seen: frozenset[str] = frozenset()) -> set[str]:
    """The modules an import of ``name`` from ``module`` (or of ``module`` itself) covers."""
    if name is None:
        return {module}
    sub = f"{module}.{name}"
    if sub in MODULES:
        return {module, sub}
    source = reexports(module).get(name)
    if source is None or source in seen:
        return {module}
    return {module} | covered(source, name, seen | {module})


def room_folder(module: str) -> Path:
    """Where a module's unit tests live."""
    parts = module.split(".")
    if len(parts) > 1 and MODULES[".".join(parts[:2])].name == "__init__.py":
        return UNIT / parts[1]
    return UNIT


def modules_under_test() -> dict[str, set[Path]]:
    """Module → the unit test files that cover it."""
    found: dict[str, set[Path]] = {}
    for test in sorted(UNIT.rglob("test_*.py")):
        for node in ast.walk(ast.parse(test.read_text())):
            imports: list[tuple[str, str | None]] = []
            if isinstance(node, ast.Import):
                imports = [(a.name, None) for a in node.names if a.name in MODULES]
            elif isinstance(node, ast.ImportFrom) and node.module in MODULES:
                imports = [(node.module, a.name) for a in node.names]
            for module, name in imports:
                for hit in covered(module, name):
                    found.setdefault(hit, set()).add(test)
    return found


def test_every_module_has_a_unit_test_in_its_room() -> None:
    tested = modules_under_test()
    missing = []
    for module in MODULES:
        folder = room_folder(module)
        where = {t for t in tested.get(module, set()) if t.parent == folder}
        if not where and module not in WITHOUT_UNIT_TEST:
            missing.append(f"{module}: no test in {folder.relative_to(UNIT.parents[1])} imports it")
    assert not missing, "modules without a unit test:\n" + "\n".join(missing)


def test_the_exceptions_are_still_exceptions() -> None:
    tested = modules_under_test()
    stale = [
        module
        for module in WITHOUT_UNIT_TEST
        if module not in MODULES
        or any(t.parent == room_folder(module) for t in tested.get(module, ()))
    ]
    assert not stale, f"no longer without a unit test, or gone: {stale}"


def test_a_facade_import_covers_the_module_the_name_comes_from() -> None:
    assert covered("kedro_stream.config", "StreamConfig") == {
        "kedro_stream.config",
        "kedro_stream.config.models",
    }
    assert "kedro_stream.session.boot" in covered("kedro_stream", "boot_project")
    assert covered("kedro_stream.service", "loop") == {
        "kedro_stream.service",
        "kedro_stream.service.loop",
    }
