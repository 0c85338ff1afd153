"""The package's import graph: no cycle among textok modules, and no arrow up into training.

Every ``import`` statement counts, including those inside functions (a lazy import is still a
dependency). ``from .pkg import name`` points at the submodule ``pkg.name`` when there is one,
else at ``pkg`` (its ``__init__``).
"""

import ast
from pathlib import Path

import textok

SRC = Path(textok.__file__).resolve().parent
#: the application layer above training: the command line and the demo (it trains a pair)
APPLICATIONS = ("textok.cli", "textok.demo", "textok.__main__")


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = ["textok", *path.relative_to(SRC).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()

    def known(name: str) -> str | None:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else None

    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, (path, is_package) in modules.items():
        package = module.split(".") if is_package else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target.startswith("textok") and (t := known(target)) is not None and t != module:
                    edges[module].add(t)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (cycle := visit(w)):
                return cycle
        path.pop()
        state[v] = 2
        return None

    for v in sorted(edges):
        if v not in state and (cycle := visit(v)):
            return cycle
    return None


def test_the_graph_sees_the_imports():
    edges = import_graph()
    assert "textok.conditioning" in edges["textok.training.task"]
    assert "textok.data.formats" in edges["textok.data.datasets"]


def test_no_import_cycle_among_textok_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_nothing_below_training_imports_it():
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() for t in targets
                    if t.startswith("textok.training") and not m.startswith("textok.training")
                    and not m.startswith(APPLICATIONS))
    assert not upward, "modules outside textok.training (and the CLI / demo) import it: " + "; ".join(upward)


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
