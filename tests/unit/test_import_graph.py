"""The package's import graph, read statically: rooms layered without cycles, and no module cycle.

A room is a subpackage of ``kedro_stream`` (``service``, ``state``, ...) or a top-level module
(``errors``, ``records``, ...); the package itself (its ``__init__``, the Python API) is the room
``kedro_stream``. Rooms sit in layers (:data:`LAYERS`, as "What is here" in docs/development.md
draws them): a room imports only rooms of lower layers, never one beside it or above it, so the
rooms cannot form a cycle and a reader knows where a change belongs.

Every import counts, function-level ones included (a lazy import only postpones a cycle); those
under ``if TYPE_CHECKING:`` never run, so they count for layering but not for cycles. Importing
``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so a module also depends on the
packages above what it imports, except on the packages it is itself part of.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

PACKAGE = "kedro_stream"
SRC = Path(__file__).resolve().parents[2] / "src"
#: Bottom to top. A room may import the rooms of lower layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "records", "version"),  # the floor: what every room may say
    ("serde", "config", "telemetry"),  # bytes ↔ records; stream.yml; Kedro's telemetry hooks
    ("kafka", "devbroker", "process_setup"),  # clients; the development broker; a command's process
    ("metrics",),  # Prometheus registry, lag, HTTP endpoints
    ("session", "state"),  # a compiled namespace (Kedro only); per-key state
    ("service", "datasets"),  # the loop and its collaborators; state's dataset for `kedro run`
    ("ops", "testing"),  # operations on a stopped group; the broker fixture for tests
    ("cli", PACKAGE),  # commands, and the Python API
    ("__main__",),  # `kedro-stream`: the commands without the kedro CLI
)
#: Kept out of the whole of serde: it turns bytes into records and nothing else.
SERDE_FORBIDDEN = ("kedro", "kedro_stream.config", "kedro_stream.service")


@dataclass(frozen=True)
class Import:
    target: str  # a module of the package, or an outside top-level package
    line: int
    where: str  # "module level" or "in <function>"
    type_only: bool


def modules(src: Path, package: str) -> dict[str, Path]:
    """Module name → file, for every module of the package."""
    found = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.module, self.is_package, self.known = module, is_package, known
        self.found: list[Import] = []
        self._function: list[str] = []
        self._type_only = 0

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self._type_only += 1
            for child in node.body:
                self.visit(child)
            self._type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._function.append(node.name)
        self.generic_visit(node)
        self._function.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(self._inside(alias.name) or alias.name.split(".")[0], node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the module's own package, then up
            anchor = self.module.split(".")
            anchor = anchor if self.is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        inside = self._inside(base)
        if inside is None:
            self._add(base.split(".")[0], node)
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in self.known else inside, node)

    def _inside(self, name: str) -> str | None:
        """The package's module ``name`` names, or the longest one above it."""
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in self.known:
                return candidate
        return None

    def _add(self, target: str, node: ast.stmt) -> None:
        where = f"in {self._function[-1]}()" if self._function else "module level"
        type_only = self._type_only > 0
        self.found.append(Import(target, node.lineno, where, type_only))
        if target in self.known:  # importing a.b.c runs a and a.b first
            parts = target.split(".")
            for end in range(1, len(parts)):
                above = ".".join(parts[:end])
                if not (self.module == above or self.module.startswith(above + ".")):
                    self.found.append(Import(above, node.lineno, where, type_only))


def import_graph(src: Path, package: str) -> dict[str, list[Import]]:
    """Module → its imports (of the package's modules and of outside top-level packages)."""
    files = modules(src, package)
    graph = {}
    for name, path in files.items():
        visitor = _Imports(name, path.name == "__init__.py", set(files))
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        graph[name] = [i for i in visitor.found if i.target != name]
    return graph


def _runtime_edges(graph: dict[str, list[Import]]) -> dict[str, dict[str, Import]]:
    edges: dict[str, dict[str, Import]] = {name: {} for name in graph}
    for name, imports in graph.items():
        for found in imports:
            if found.target in graph and not found.type_only:
                edges[name].setdefault(found.target, found)
    return edges


def _components(edges: dict[str, dict[str, Import]]) -> Iterator[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


def _shortest_path(edges: dict[str, dict[str, Import]], start: str, goal: str) -> list[str]:
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for child in sorted(edges[node]):
            if child == goal:
                return [*paths[node], goal]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no path from {start} to {goal}")


def _render(edges: dict[str, dict[str, Import]], path: list[str]) -> str:
    steps = [path[0]]
    for here, there in pairwise(path):
        found = edges[here][there]
        steps.append(f"--(line {found.line}, {found.where})--> {there}")
    return " ".join(steps)


def import_cycles(graph: dict[str, list[Import]]) -> list[str]:
    """One shortest cycle through each module that is part of a cycle, rendered, deduplicated
    (a tangle of modules gets several, which is what there is to untie)."""
    edges = _runtime_edges(graph)
    cycles: dict[frozenset[tuple[str, str]], str] = {}
    for component in _components(edges):
        members = set(component)
        inner = {m: {t: i for t, i in edges[m].items() if t in members} for m in component}
        for module in component:
            path = min(
                (_shortest_path(inner, child, module) for child in inner[module]),
                key=len,
            )
            path = [module, *path]
            # The same cycle found from each of its modules: keyed by its edges.
            key = frozenset(pairwise(path))
            cycles.setdefault(key, _render(inner, path))
    return sorted(cycles.values())


def layering_violations(
    graph: dict[str, list[Import]], layer: str, forbidden: tuple[str, ...]
) -> list[str]:
    """For each module of ``layer``, the shortest way it reaches each forbidden module or outside
    package through the package's own modules (type-only imports included: a type is a
    dependency too)."""
    found = []
    for start in sorted(m for m in graph if m == layer or m.startswith(layer + ".")):
        paths = {start: [start]}
        queue = [start]
        for node in queue:
            for imported in graph[node]:
                target = imported.target
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    found.append(" -> ".join([*paths[node], f"{target} (line {imported.line})"]))
                elif target in graph and target not in paths:
                    paths[target] = [*paths[node], target]
                    queue.append(target)
    return sorted(set(found))


def room_of(module: str, package: str = PACKAGE) -> str:
    """The room a module of ``package`` belongs to."""
    parts = module.split(".")
    return package if len(parts) == 1 else parts[1]


def room_graph(graph: dict[str, list[Import]]) -> dict[str, dict[str, str]]:
    """Room → the rooms it imports, each with one import that shows it (type-only included:
    a type is a dependency too)."""
    rooms: dict[str, dict[str, str]] = {}
    for module, imports in sorted(graph.items()):
        here = room_of(module)
        rooms.setdefault(here, {})
        for found in imports:
            if found.target not in graph:
                continue
            there = room_of(found.target)
            if there != here:
                rooms[here].setdefault(there, f"{module} -> {found.target} (line {found.line})")
    return rooms


def layer_violations(
    rooms: dict[str, dict[str, str]], layers: tuple[tuple[str, ...], ...]
) -> list[str]:
    """Each import of a room at its own layer or above, and each room no layer places."""
    layer = {room: i for i, names in enumerate(layers) for room in names}
    found = [
        f"room {room!r} is in no layer: place it in LAYERS" for room in rooms if room not in layer
    ]
    for room, imported in sorted(rooms.items()):
        for other, shown in sorted(imported.items()):
            if room in layer and other in layer and layer[other] >= layer[room]:
                found.append(f"{room} imports {other}, which is not below it: {shown}")
    return found


def room_cycles(rooms: dict[str, dict[str, str]]) -> list[str]:
    """The cycles between rooms, one shortest through each room that is part of one."""
    edges: dict[str, dict[str, Import]] = {
        room: {other: Import(other, 0, shown, False) for other, shown in imported.items()}
        for room, imported in rooms.items()
    }
    for imported in list(edges.values()):
        for other in imported:
            edges.setdefault(other, {})
    cycles: dict[frozenset[tuple[str, str]], str] = {}
    for component in _components(edges):
        members = set(component)
        for room in component:
            path = min(
                (_shortest_path(edges, child, room) for child in edges[room] if child in members),
                key=len,
            )
            path = [room, *path]
            # The same cycle found from each of its rooms: keyed by its edges.
            cycles.setdefault(frozenset(pairwise(path)), " -> ".join(path))
    return sorted(cycles.values())


GRAPH = import_graph(SRC, PACKAGE)


def test_the_package_has_no_import_cycle() -> None:
    cycles = import_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_each_room_imports_only_rooms_below_it() -> None:
    violations = layer_violations(room_graph(GRAPH), LAYERS)
    assert not violations, "rooms out of their layers:\n" + "\n".join(violations)


def test_no_cycle_between_rooms() -> None:
    cycles = room_cycles(room_graph(GRAPH))
    assert not cycles, "cycles between rooms:\n" + "\n".join(cycles)


def test_serde_reaches_neither_kedro_nor_the_config_nor_the_service() -> None:
    layer = f"{PACKAGE}.serde"
    violations = layering_violations(GRAPH, layer, SERDE_FORBIDDEN)
    assert not violations, f"{layer} must not import {SERDE_FORBIDDEN}:\n" + "\n".join(violations)


def test_the_graph_is_read_as_python_runs_it() -> None:
    assert {f"{PACKAGE}.serde.base", f"{PACKAGE}.serde", PACKAGE} <= GRAPH.keys()
    targets = {i.target for i in GRAPH[f"{PACKAGE}.service.codecs"]}
    assert {f"{PACKAGE}.serde", f"{PACKAGE}.serde.confluent", f"{PACKAGE}.config"} <= targets


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A package with a cycle through a lazy import, and type-only imports that are none."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.leaf import VALUE\n")
    (package / "sub" / "leaf.py").write_text("import kedro\nVALUE = 1\n")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nfrom . import b\n"
        "if TYPE_CHECKING:\n    from pkg.c import C\n"
    )
    (package / "b.py").write_text("def lazy():\n    from pkg import a\n")
    (package / "c.py").write_text("from pkg.a import b\nfrom pkg.sub.leaf import VALUE\n")
    return tmp_path


def test_a_planted_cycle_and_a_planted_dependency_are_found(planted: Path) -> None:
    graph = import_graph(planted, "pkg")
    assert import_cycles(graph) == [
        "pkg.a --(line 2, module level)--> pkg.b --(line 2, in lazy())--> pkg.a"
    ]
    # c -> a is real and a -> c only a type: no cycle, but c reaches kedro through pkg.sub.
    assert layering_violations(graph, "pkg.c", ("kedro",)) == [
        "pkg.c -> pkg.sub.leaf -> kedro (line 1)"
    ]
    assert layering_violations(graph, "pkg.a", ("kedro",)) == [
        "pkg.a -> pkg.c -> pkg.sub.leaf -> kedro (line 1)"
    ]
    assert layering_violations(graph, "pkg.b", ("pkg.c", "kedro")) == [
        "pkg.b -> pkg.a -> pkg.c (line 4)"
    ]


def _planted_copy(tmp_path: Path, module: str, line: str) -> dict[str, list[Import]]:
    """The real package's graph with ``line`` added to ``module`` (a path under the package)."""
    copy = tmp_path / "src"
    shutil.copytree(SRC / PACKAGE, copy / PACKAGE)
    target = copy / PACKAGE / module
    target.write_text(target.read_text() + line + "\n")
    return import_graph(copy, PACKAGE)


def test_a_planted_state_to_service_import_breaks_the_layers(tmp_path: Path) -> None:
    graph = _planted_copy(
        tmp_path, "state/keeper.py", "from kedro_stream.service.loop import StreamService"
    )
    rooms = room_graph(graph)
    assert any(v.startswith("state imports service,") for v in layer_violations(rooms, LAYERS))
    assert room_cycles(rooms) == ["service -> state -> service"]


def test_a_planted_session_to_state_import_breaks_the_layers(tmp_path: Path) -> None:
    """Rooms of one layer do not import each other either."""
    graph = _planted_copy(tmp_path, "session/compiler.py", "import kedro_stream.state.rows")
    violations = layer_violations(room_graph(graph), LAYERS)
    assert any(v.startswith("session imports state,") for v in violations)


def test_a_planted_cycle_between_rooms_is_found(tmp_path: Path) -> None:
    """kafka imports serde (the file producer encodes records): serde importing kafka, even in
    a function, closes a cycle."""
    graph = _planted_copy(
        tmp_path, "serde/base.py", "def lazy():\n    import kedro_stream.kafka.errors"
    )
    assert room_cycles(room_graph(graph)) == ["kafka -> serde -> kafka"]
    assert import_cycles(graph) == []  # no module cycle: only the rooms' layers tell


def test_a_room_in_no_layer_is_named() -> None:
    rooms = {"errors": {}, "newroom": {"errors": "newroom -> errors (line 1)"}}
    assert layer_violations(rooms, LAYERS) == ["room 'newroom' is in no layer: place it in LAYERS"]
