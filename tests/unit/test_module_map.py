"""The module map, "What is here" in docs/development.md, matches the tree: every room and module
of the package is named there, every path it names exists, and its layers are the ones the
import-graph test holds."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.test_import_graph import LAYERS, PACKAGE

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / PACKAGE


def what_is_here() -> str:
    page = (REPO / "docs" / "development.md").read_text()
    start = page.index("## What is here\n")
    stop = page.find("\n## ", start + 1)
    return page[start : stop if stop >= 0 else len(page)]


def test_every_module_is_named() -> None:
    section = what_is_here()
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        name = path.name if path.parent == SRC else path.stem
        if f"`{name}`" not in section and f"`{path.name}`" not in section:
            missing.append(str(path.relative_to(REPO)))
    assert not missing, f"not in docs/development.md's What is here: {missing}"


def test_every_path_named_exists() -> None:
    named = re.findall(r"`((?:src|tests|bench|deploy|conf|schemas)/[^`]*)`", what_is_here())
    missing = [path for path in named if "<" not in path and not (REPO / path).exists()]
    assert named and not missing, f"named in docs/development.md but not in the tree: {missing}"


def test_the_layers_are_the_import_graph_test_s() -> None:
    section = what_is_here()
    table = section[section.index("| layer | rooms |") :].split("\n\n", 1)[0]
    rows = [line.split("|")[2] for line in table.splitlines()[2:]]
    named = [set(re.findall(r"`(\w+)(?:/|\.py)`", cell)) for cell in rows]
    for cell, names in zip(rows, named, strict=True):
        if "the Python API" in cell:
            names.add(PACKAGE)  # the package itself
    assert named == [set(layer) for layer in LAYERS]
