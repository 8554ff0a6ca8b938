"""Every public class, function and method of the package says why it exists, in a docstring."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "kedro_stream"


def undocumented(root: Path) -> list[str]:
    """``path:line name`` of each public class, function or method without a docstring."""
    found = []

    def visit(path: Path, body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if node.name.startswith("_"):
                continue
            if ast.get_docstring(node) is None:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno} {prefix}{node.name}")
            if isinstance(node, ast.ClassDef):
                visit(path, node.body, f"{prefix}{node.name}.")

    for path in sorted(root.rglob("*.py")):
        visit(path, ast.parse(path.read_text()).body, "")
    return found


def test_every_public_class_and_function_has_a_docstring() -> None:
    missing = undocumented(SRC)
    assert not missing, "without a docstring:\n" + "\n".join(missing)


def test_a_private_helper_needs_none_and_a_public_method_does(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text(
        'def _helper():\n    pass\n\nclass Thing:\n    """Why."""\n\n    def act(self):\n'
        "        pass\n"
    )
    assert undocumented(package) == ["pkg/m.py:7 Thing.act"]
