"""The package's import graph: the layer order the README draws, and no cycle among textok modules.

Every ``import`` statement counts, including those inside functions (a lazy import is still a
dependency). ``from .pkg import name`` points at the submodule ``pkg.name`` when there is one,
else at ``pkg`` (its ``__init__``).
"""

import ast
import re
from pathlib import Path

import textok

SRC = Path(textok.__file__).resolve().parent
README = SRC.parents[1] / "README.md"

#: the layers, bottom first, by top-level unit (a module or a subpackage of ``textok``): a unit imports only
#: units of lower layers (and its own modules); only the applications, the top layer, import each other.
#: ``textok`` is the package's ``__init__``, the public API that gathers the layers below.
LAYERS: list[tuple[str, ...]] = [
    ("config", "errors", "text", "assets", "pretrained"),
    ("io",),
    ("hub", "data"),
    ("models", "conditioning", "diffusion"),
    ("tokenizer", "losses"),
    ("latents", "generation", "inference"),
    ("metrics",),
    ("explore", "training"),
    ("demo", "app", "cli", "__main__", "textok"),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
#: the application layer above training: the command line, the page and the demo (it trains a pair)
APPLICATIONS = set(LAYERS[-1])


def unit(module: str) -> str:
    """The top-level unit of a module: ``textok.data.stream`` -> ``data``; the package itself -> ``textok``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "textok"


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


def test_every_unit_has_a_layer():
    units = {unit(m) for m in import_graph()}
    assert units == set(LAYER), (f"units without a layer: {sorted(units - set(LAYER))}; layers naming no unit: "
                                 f"{sorted(set(LAYER) - units)} (place each in LAYERS and in the README's order)")


def test_imports_only_go_down_the_layers():
    wrong = []
    for module, targets in import_graph().items():
        a = unit(module)
        for target in targets:
            b = unit(target)
            if a == b or (a in APPLICATIONS and b in APPLICATIONS):
                continue
            if LAYER[b] >= LAYER[a]:
                wrong.append(f"{module} -> {target} ({a}: layer {LAYER[a]}, {b}: layer {LAYER[b]})")
    assert not wrong, "imports that do not go down the layers: " + "; ".join(sorted(wrong))


def test_nothing_below_training_imports_it():
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() for t in targets
                    if unit(t) == "training" and unit(m) not in ("training", *APPLICATIONS))
    assert not upward, "modules outside textok.training (and the applications) import it: " + "; ".join(upward)


def test_the_readme_draws_these_layers():
    """The README's sentence "Imports only go down: `a`, `b` -> `c` -> ..." names the same layers in order."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    match = re.search(r"Imports only go down: (.+?)\.(?:\s|$)", text)
    assert match, "the README's layout section lost its 'Imports only go down: ...' sentence"
    drawn = [tuple(re.findall(r"`([\w.]+)`", layer)) for layer in match.group(1).split("->")]
    want = [tuple(u for u in layer if u not in ("__main__", "textok")) for layer in LAYERS]
    assert [set(d) for d in drawn] == [set(w) for w in want], f"README draws {drawn}; the test checks {want}"


def test_a_layer_violation_is_found():
    assert unit("textok.data.stream") == "data" and unit("textok") == "textok"
    assert LAYER["models"] > LAYER["data"] > LAYER["io"] > LAYER["config"]


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
