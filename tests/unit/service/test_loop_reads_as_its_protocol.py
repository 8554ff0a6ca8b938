"""``service/loop.py`` reads as the protocol it documents: the steps its docstring numbers are
the steps its protocol method takes, one line each, in that order, under the same names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from kedro_stream.service import loop

SOURCE = Path(loop.__file__).read_text()
#: The loop grew back to 613 lines once; past this, something else moved in.
MAX_LINES = 300


def docstring_steps(source: str) -> list[tuple[int, str]]:
    """``(number, name)`` of each step the module docstring lists (``1. decode   ...``)."""
    doc = ast.get_docstring(ast.parse(source)) or ""
    return [(int(n), name) for n, name in re.findall(r"^(\d+)\. (\w+(?: \w+)?)\s{2,}", doc, re.M)]


def method_steps(source: str, method: str) -> list[tuple[int, str, int]]:
    """``(number, name, line)`` of each ``# N. name`` comment in ``method``."""
    tree = ast.parse(source)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == method)
    lines = source.splitlines()[node.lineno - 1 : node.end_lineno]
    return [
        (int(m[1]), m[2], node.lineno + i)
        for i, line in enumerate(lines)
        if (m := re.search(r"# (\d+)\. (\w+(?: \w+)?)$", line))
    ]


def test_the_protocol_method_takes_the_documented_steps_one_line_each() -> None:
    documented = docstring_steps(SOURCE)
    taken = method_steps(SOURCE, "_attempt")
    assert [n for n, _ in documented] == list(range(1, len(documented) + 1))
    assert [(n, name) for n, name, _ in taken] == documented
    assert len({line for _, _, line in taken}) == len(taken)  # no step spread over two lines


def test_a_step_numbered_twice_or_out_of_order_is_found() -> None:
    planted = SOURCE.replace("# 5. encode state", "# 4. encode state")
    assert [(n, name) for n, name, _ in method_steps(planted, "_attempt")] != docstring_steps(
        planted
    )


def test_the_loop_stays_short() -> None:
    assert len(SOURCE.splitlines()) <= MAX_LINES
