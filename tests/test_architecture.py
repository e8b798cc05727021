"""The house's shape, checked: rooms (top-level packages) on floors, every import going down or
level, no circles between modules, a top level small enough to show the architecture, no
function too long to read.

Every import counts: at module level, inside functions (lazy, to keep `import irtune` light)
and under TYPE_CHECKING, since each is a dependency a reader has to follow.

    python tests/test_architecture.py     # prints the house: rooms, floors, imports, circles
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "irtune"

# Floors, lowest first: a room imports only from its own floor or below. Within a room,
# modules import each other freely (but never in a circle).
FLOORS: list[set[str]] = [
    {"errors", "core"},
    {"data"},
    {"results"},
    {"models"},
    {"retrieval"},
    {"generation"},
    {"training"},
    {"evaluation"},
    {"reporting"},
    {"study"},
    {"api"},
    {"cli", "__main__", ""},  # "": the package root, irtune/__init__.py (the lazy API)
]
MAX_TOP_LEVEL = 15
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports() -> dict[str, set[str]]:
    """module -> the irtune modules it imports (the package root, `irtune`, excepted: it only
    holds the version and the lazy API)."""
    known = modules()

    def resolve(name: str) -> str:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.startswith("irtune") else ""
                if target not in ("", "irtune", module):
                    graph[module].add(target)
    return graph


def room(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def floor(module: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if room(module) in rooms)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if floor(target) > floor(module)
    )


def long_functions() -> list[str]:
    """Functions over MAX_FUNCTION_LINES lines; a CLI command's signature (its options) is
    not counted, only its body."""
    found = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = node.body[0].lineno if room(module) == "cli" else node.lineno
                assert node.end_lineno is not None
                if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    found.append(f"{module}.{node.name}: {node.end_lineno - start + 1} lines")
    return found


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
NOT_IRTUNE_FLAGS = {
    "--porcelain",
    "--untracked-files",
    "--no-deps",
}  # git's and pip's, in commands run or shown


def flag_mentions() -> list[str]:
    """Strings outside the CLI that name a command-line flag (docstrings aside): the library
    names its parameters, and the CLI turns them into flags (errors.ParameterError)."""
    found = []
    for module, path in modules().items():
        if room(module) == "cli":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and set(FLAG.findall(node.value)) - NOT_IRTUNE_FLAGS
            ):
                found.append(f"{module}:{node.lineno}: {node.value.strip()[:70]}")
    return sorted(found)


def test_every_room_stands_on_a_floor() -> None:
    rooms = {room(module) for module in modules()} - {""}
    assert rooms <= set().union(*FLOORS), rooms - set().union(*FLOORS)


def test_no_circles_between_modules() -> None:
    assert circles(imports()) == []


def test_imports_go_down_or_level() -> None:
    assert upward(imports()) == []


def test_the_top_level_shows_the_architecture() -> None:
    top = sorted(p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file())
    assert len(top) <= MAX_TOP_LEVEL, top


def test_the_library_speaks_in_parameters_not_flags() -> None:
    assert flag_mentions() == []


def test_no_function_too_long_to_read() -> None:
    assert long_functions() == []


if __name__ == "__main__":
    graph = imports()
    by_room: dict[str, list[str]] = defaultdict(list)
    for module in sorted(modules()):
        by_room[room(module) or module].append(module.rpartition(".")[2])
    for level, rooms in enumerate(FLOORS):
        for name in sorted(rooms):
            print(f"floor {level:2d}  {name:12s} {' '.join(m for m in by_room.get(name, []) if m != name)}")
    cross = sum(1 for m, ts in graph.items() for t in ts if room(t) != room(m))
    print(f"{len(modules())} modules, {sum(map(len, graph.values()))} imports ({cross} between rooms)")
    print(f"circles: {circles(graph)}")
    print("imports running back up:", *upward(graph), sep="\n  ")
    print("functions over 80 lines:", *long_functions(), sep="\n  ")
    print("flags named outside the CLI:", *flag_mentions(), sep="\n  ")
    sys.exit(0)
